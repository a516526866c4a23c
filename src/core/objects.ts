import { visibleTo, type Caller } from './caller.js';
import { fail, type Blocker } from './errors.js';
import type { IovaSpace } from './iova-space.js';
import type { CoreEvent } from './events.js';
import type { Attachment, Binding, Context, CoreObject, DeviceOpen, GroupHold, Hwpt, ObjectRef, ObjectType, PasidAttachment } from './model.js';
import type { UndoLog } from './tx.js';

/** Each object type and what it is in memory. */
export interface ObjectTypes {
  context: Context;
  ioas: IovaSpace;
  hwpt: Hwpt;
  'group-hold': GroupHold;
  'device-open': DeviceOpen;
  binding: Binding;
  attachment: Attachment;
  'pasid-attachment': PasidAttachment;
}

type Key<K extends ObjectType> = ObjectTypes[K]['id'];

/**
 * What destroying an object of a type does besides leaving the table: undo what it holds (drop its
 * domain, leave what it uses, free its id) and delete its rows. Registered by the file that owns
 * the type (kernel: iommufd_object_ops.destroy).
 */
export type DestroyOp<K extends ObjectType> = (obj: ObjectTypes[K], undo: UndoLog) => void;

/**
 * The order a release walks leaves in, and the order blockers are listed in: holders before what
 * they hold. Only a tie-break: the walk itself follows the references.
 */
const TYPE_ORDER: readonly ObjectType[] = ['pasid-attachment', 'attachment', 'device-open', 'binding', 'hwpt', 'group-hold', 'ioas', 'context'];

const noun: Record<ObjectType, string> = {
  context: 'context',
  ioas: 'ioas',
  hwpt: 'hwpt',
  'group-hold': 'open group',
  'device-open': 'open device',
  binding: 'binding',
  attachment: 'attachment',
  'pasid-attachment': 'PASID attachment',
};

/**
 * One object table for everything with an id that others can hold (kernel: ictx->objects and
 * iommufd_get_object / iommufd_object_remove / iommufd_fops_release):
 * - one lookup by type and id, answering ENOENT for a missing, foreign or wrong-type id;
 * - typed references: `use(user, target)` records that `user` holds `target`;
 * - one destroy rule: an object with users is EBUSY, each user named as a blocker;
 * - one generic teardown: a context's objects are destroyed leaves first by their references.
 */
export class ObjectTable {
  private readonly byType: { [K in ObjectType]: Map<Key<K>, ObjectTypes[K]> } = {
    context: new Map(),
    ioas: new Map(),
    hwpt: new Map(),
    'group-hold': new Map(),
    'device-open': new Map(),
    binding: new Map(),
    attachment: new Map(),
    'pasid-attachment': new Map(),
  };
  private readonly byContext = new Map<string, Set<CoreObject>>();
  /** How many objects of each type each principal owns (a quota check must not scan the table). */
  private readonly owned = new Map<string, number>();
  private readonly destroyOps: { [K in ObjectType]?: DestroyOp<K> } = {};
  private emit: (event: CoreEvent) => void = () => {};

  /** Where the events of objects made and destroyed go (core/tx.ts collects them per change). */
  onEvent(emit: (event: CoreEvent) => void): void {
    this.emit = emit;
  }

  /** Registers what destroying an object of this type does. */
  define<K extends ObjectType>(type: K, destroy: DestroyOp<K>): void {
    (this.destroyOps as Record<K, DestroyOp<K>>)[type] = destroy;
  }

  /** Every object of a type, by id (read-only: changes go through add and destroy). */
  all<K extends ObjectType>(type: K): ReadonlyMap<Key<K>, ObjectTypes[K]> {
    return this.byType[type];
  }

  /** How many objects of this type the principal owns. */
  countOwned(type: ObjectType, principalId: string): number {
    return this.owned.get(`${type}\0${principalId}`) ?? 0;
  }

  /** The object of this type and id, whoever owns it. */
  find<K extends ObjectType>(type: K, id: Key<K>): ObjectTypes[K] | undefined {
    return this.byType[type].get(id);
  }

  /** The object of this type and id as the caller may see it: missing, foreign or of another type is ENOENT. */
  get<K extends ObjectType>(caller: Caller, type: K, id: Key<K>): ObjectTypes[K] {
    const obj = this.byType[type].get(id);
    // Another principal's object answers exactly as a missing one (SPEC 7).
    if (!obj || !visibleTo(caller, obj)) fail('ENOENT', `${type} ${id} does not exist`);
    return obj;
  }

  /**
   * Objects of a type visible to the caller, in id order (not insertion order, which an undone
   * destroy changes: a listing must not differ after a refused change or a dry run).
   */
  visible<K extends ObjectType>(caller: Caller, type: K): ObjectTypes[K][] {
    return [...this.byType[type].values()].filter((o) => visibleTo(caller, o)).sort((a, b) => compareIds(a.id, b.id));
  }

  /** Every object a context owns (the context itself included). */
  ofContext(contextId: string): CoreObject[] {
    return [...(this.byContext.get(contextId) ?? [])];
  }

  has(obj: CoreObject): boolean {
    return this.byType[obj.type].get(obj.id as never) === obj;
  }

  /** Puts a new object in the table. */
  add(obj: ObjectTypes[ObjectType], undo?: UndoLog): void {
    const map = this.byType[obj.type] as Map<number | string, CoreObject>;
    if (map.has(obj.id)) throw new Error(`${obj.type} ${obj.id} is already in the object table`);
    this.put(obj);
    undo?.push(() => this.drop(obj));
    this.emit(lifecycleEvent(obj, true));
  }

  /** Records that `user` holds `target` (kernel: refcount_inc(&target->users)). */
  use(user: CoreObject, target: CoreObject, undo?: UndoLog): void {
    if (target.users.has(user)) return;
    target.users.add(user);
    undo?.push(() => target.users.delete(user));
  }

  /** `user` no longer holds `target`. */
  unuse(user: CoreObject, target: CoreObject, undo?: UndoLog): void {
    if (target.users.delete(user)) undo?.push(() => target.users.add(user));
  }

  /** The object a typed reference names. */
  deref<K extends ObjectType>(ref: ObjectRef<K>): ObjectTypes[K] | undefined {
    return this.byType[ref.type].get(ref.id as Key<K>);
  }

  /** Everything holding the object, each as a blocker a user can act on. */
  blockersOf(obj: CoreObject): Blocker[] {
    return sortedByType([...obj.users]).map((u) => blockerOf(u, obj));
  }

  /** The one destroy rule: an object in use is EBUSY, naming every user. */
  assertUnused(obj: CoreObject): void {
    if (obj.users.size === 0) return;
    const users = sortedByType([...obj.users]);
    fail('EBUSY', `${obj.type} ${obj.id} is in use by ${users.map((u) => `${noun[u.type]} ${describeId(u)}`).join(', ')}`, {
      blockers: users.map((u) => blockerOf(u, obj)),
    });
  }

  /** Destroys an unused object: its type's destroy op, then it leaves the table. */
  destroy(obj: CoreObject, undo: UndoLog): void {
    this.assertUnused(obj);
    const op = this.destroyOps[obj.type] as DestroyOp<ObjectType> | undefined;
    if (!op) throw new Error(`no destroy op for ${obj.type}`);
    op(obj as ObjectTypes[ObjectType], undo);
    this.drop(obj);
    undo.push(() => this.put(obj));
    this.emit(lifecycleEvent(obj, false));
  }

  /**
   * Destroys an object after everything that holds it, leaves first (closing a group closes its
   * devices; unbinding detaches PASIDs and the device first).
   */
  destroyWithUsers(obj: CoreObject, undo: UndoLog): void {
    for (const user of sortedByType([...obj.users])) if (this.has(user)) this.destroyWithUsers(user, undo);
    if (this.has(obj)) this.destroy(obj, undo);
  }

  /**
   * The one generic teardown (kernel: iommufd_fops_release): everything a context owns is destroyed
   * leaves first, following the references, then the context itself. A destroy may take others with
   * it (an automatic hwpt goes with its last device); those are skipped.
   */
  release(contextId: string, undo: UndoLog): void {
    const context = this.find('context', contextId);
    for (;;) {
      const left = this.ofContext(contextId).filter((o) => o !== context);
      if (left.length === 0) break;
      const leaves = sortedByType(left.filter((o) => o.users.size === 0));
      if (leaves.length === 0) throw new Error(`context ${contextId}: objects hold each other in a cycle`);
      for (const o of leaves) if (this.has(o) && o.users.size === 0) this.destroy(o, undo);
    }
    if (context) this.destroy(context, undo);
  }

  private drop(obj: CoreObject): void {
    (this.byType[obj.type] as Map<number | string, CoreObject>).delete(obj.id);
    const mine = this.byContext.get(obj.contextId);
    mine?.delete(obj);
    if (mine?.size === 0) this.byContext.delete(obj.contextId);
    const key = `${obj.type}\0${obj.principalId}`;
    const n = (this.owned.get(key) ?? 0) - 1;
    if (n > 0) this.owned.set(key, n);
    else this.owned.delete(key);
  }

  private put(obj: CoreObject): void {
    (this.byType[obj.type] as Map<number | string, CoreObject>).set(obj.id, obj);
    let mine = this.byContext.get(obj.contextId);
    if (!mine) this.byContext.set(obj.contextId, (mine = new Set()));
    mine.add(obj);
    const key = `${obj.type}\0${obj.principalId}`;
    this.owned.set(key, (this.owned.get(key) ?? 0) + 1);
  }
}

function sortedByType<T extends CoreObject>(objs: T[]): T[] {
  return objs.sort((a, b) => TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type) || compareIds(a.id, b.id));
}

function compareIds(a: number | string, b: number | string): number {
  return typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function describeId(o: CoreObject): string {
  return o.type === 'pasid-attachment' ? `${(o as PasidAttachment).deviceId} pasid ${(o as PasidAttachment).pasid}` : String(o.id);
}

/** How a user of an object appears to the person refused: the device, group or hwpt behind it. */
export function blockerOf(user: CoreObject, target: CoreObject): Blocker {
  const reason =
    target.type === 'ioas'
      ? `uses ioas ${target.id}`
      : user.type === 'attachment'
        ? 'attached'
        : user.type === 'pasid-attachment'
          ? `pasid ${(user as PasidAttachment).pasid} attached`
          : user.type === 'hwpt'
            ? 'nested child'
            : user.type === 'device-open'
              ? 'open'
              : `holds ${target.type} ${target.id}`;
  return { ...blockerTarget(user), reason, owner: user.contextId };
}

function blockerTarget(o: CoreObject): Pick<Blocker, 'kind' | 'id'> {
  switch (o.type) {
    case 'group-hold':
      return { kind: 'group', id: String((o as GroupHold).groupId) };
    case 'device-open':
    case 'binding':
    case 'attachment':
    case 'pasid-attachment':
      return { kind: 'device', id: (o as DeviceOpen | Binding | Attachment | PasidAttachment).deviceId };
    case 'hwpt':
    case 'ioas':
    case 'context':
      return { kind: o.type, id: String(o.id) };
  }
}

/** The event of an object made or destroyed: one place for every type (kernel objects have no events; ioasd's clients watch these). */
function lifecycleEvent(o: CoreObject, made: boolean): CoreEvent {
  const owner = { scope: 'owner' as const, principalId: o.principalId, contextId: o.contextId };
  const gone = !made;
  switch (o.type) {
    case 'context':
      return { type: made ? 'context.created' : 'context.deleted', object: { kind: 'context', id: o.id }, ...owner, gone, subject: o };
    case 'ioas':
      return { type: made ? 'ioas.created' : 'ioas.deleted', object: { kind: 'ioas', id: o.id }, ...owner, gone, subject: o };
    case 'hwpt': {
      const h = o as Hwpt;
      return { type: made ? 'hwpt.created' : 'hwpt.deleted', object: { kind: 'hwpt', id: h.id }, ...owner, gone, subject: h, detail: { ioasId: h.ioasId, auto: h.auto } };
    }
    case 'group-hold': {
      const g = o as GroupHold;
      // An open group is inventory news for everyone (its owner shown as "other" to others).
      return { type: made ? 'group.opened' : 'group.closed', object: { kind: 'group', id: g.groupId }, scope: 'inventory', principalId: g.principalId, contextId: g.contextId };
    }
    case 'device-open': {
      const d = o as DeviceOpen;
      return { type: made ? 'device.opened' : 'device.closed', object: { kind: 'device', id: d.deviceId }, ...owner, gone, detail: { groupId: d.groupId } };
    }
    case 'binding': {
      const b = o as Binding;
      return { type: made ? 'device.bound' : 'device.unbound', object: { kind: 'device', id: b.deviceId }, ...owner, gone, subject: b, detail: { groupId: b.groupId } };
    }
    case 'attachment': {
      const a = o as Attachment;
      return { type: made ? 'device.attached' : 'device.detached', object: { kind: 'device', id: a.deviceId }, ...owner, detail: { ptId: a.target.id } };
    }
    case 'pasid-attachment': {
      const p = o as PasidAttachment;
      return { type: made ? 'device.attached' : 'device.detached', object: { kind: 'device', id: p.deviceId }, ...owner, detail: { pasid: p.pasid, ptId: p.hwptId } };
    }
  }
}
