import { visibleTo, type Caller } from '../caller.js';
import { isVirtualKind } from '../devices.js';
import { fail } from '../errors.js';
import type { IovaSpace } from '../iova-space.js';
import type { Binding, Device, Domain, Hwpt, HwptRecord } from '../model.js';
import type { UndoLog } from '../tx.js';
import { dropDomain, iommuDomain, putDomain } from './domains.js';
import type { PolicyDeps } from './types.js';

export interface HwptArgs {
  deviceId: string;
  ptId: number;
  nestParent?: boolean | undefined;
  pasid?: boolean | undefined;
  dirtyTracking?: boolean | undefined;
  data?: unknown;
}

/** How a new hwpt is made: a paging one on an IOAS, or a nested one over a nest-parent hwpt. */
export type HwptSpec =
  | { kind: 'paging'; space: IovaSpace; auto: boolean; nestParent: boolean; pasid: boolean; dirtyTracking: boolean; data: null }
  | { kind: 'nested'; parent: Hwpt; auto: false; nestParent: false; pasid: boolean; dirtyTracking: false; data: unknown };

const hwptKey = (id: number) => `hwpt:${id}`;

/**
 * Hardware page tables (device-first; kernel: drivers/iommu/iommufd/hw_pagetable.c). A paging hwpt
 * puts its domain on its IOAS (and uses it); a nested one uses its parent. Automatic hwpts are made
 * for the first device attached to an IOAS and go with the last; manual ones live until deleted.
 */
export class Hwpts {
  constructor(private readonly deps: PolicyDeps) {
    deps.objects.define('hwpt', (hwpt, undo) => this.teardown(hwpt, undo));
  }

  /**
   * POST /hwpts: a manual paging hwpt on an IOAS (its domain joins the IOAS at once), or a nested
   * one over a paging hwpt allocated with nestParent (which needs `data`, the stage-1 description).
   */
  alloc(caller: Caller, args: HwptArgs): Hwpt {
    const { objects, inventory, tx } = this.deps;
    const binding = objects.find('binding', args.deviceId);
    if (!binding || !visibleTo(caller, binding)) fail('ENOENT', `device ${args.deviceId} is not bound by you`);
    const device = inventory.getDevice(args.deviceId);
    if (!device) fail('ENOENT', `device ${args.deviceId} does not exist`);
    const space = objects.find('ioas', args.ptId);
    const parent = objects.find('hwpt', args.ptId);
    let nested = false;
    if (space && space.contextId === binding.contextId && !isVirtualKind(device.kind)) {
      nested = false;
    } else if (parent && parent.contextId === binding.contextId && !isVirtualKind(device.kind)) {
      if (parent.kind !== 'paging' || parent.auto || !parent.nestParent) {
        fail('EINVAL', `hwpt ${parent.id} cannot parent a nested hwpt: it must be a manual paging hwpt allocated with nestParent`);
      }
      nested = true;
    } else {
      fail('EINVAL', `ptId ${args.ptId} is neither an ioas nor a nest-parent hwpt of the device's context (or the device is virtual)`);
    }
    const features = inventory.getIommu().features;
    if (args.dirtyTracking && !features.dirtyTracking) fail('EOPNOTSUPP', 'the iommu has no dirty tracking');
    if (args.nestParent && !features.nesting) fail('EOPNOTSUPP', 'the iommu has no nesting support');
    if (args.pasid && !features.pasid) fail('EOPNOTSUPP', 'the iommu has no PASID support');
    if (nested && (args.data === undefined || args.data === null || typeof args.data !== 'object')) fail('EINVAL', 'a nested hwpt needs data describing its stage-1 table');
    if (nested && args.nestParent) fail('EINVAL', 'a nested hwpt cannot itself be a nest parent');
    return tx.run(
      (undo) =>
        this.create(
          binding,
          nested
            ? { kind: 'nested', parent: parent!, auto: false, nestParent: false, pasid: args.pasid === true, dirtyTracking: false, data: args.data }
            : { kind: 'paging', space: space!, auto: false, nestParent: args.nestParent === true, pasid: args.pasid === true, dirtyTracking: args.dirtyTracking === true, data: null },
          undo,
        ),
      { actor: caller.id, action: 'hwpt.alloc', target: `ioas:${args.ptId}` },
    );
  }

  /** DELETE /hwpts/{id}: the object table's destroy rule (EBUSY while devices, PASIDs or nested children use it). */
  delete(caller: Caller, id: number): void {
    const hwpt = this.get(caller, id);
    this.deps.tx.run((undo) => this.deps.objects.destroy(hwpt, undo), { actor: caller.id, action: 'hwpt.destroy', target: `hwpt:${id}` });
  }

  get(caller: Caller, id: number): Hwpt {
    return this.deps.objects.get(caller, 'hwpt', id);
  }

  list(caller: Caller): Hwpt[] {
    return this.deps.objects.visible(caller, 'hwpt');
  }

  /** The automatic hwpt an IOAS already has for this context, if any. */
  autoOf(space: IovaSpace, contextId: string): Hwpt | undefined {
    for (const h of this.deps.objects.all('hwpt').values()) if (h.auto && h.ioasId === space.id && h.contextId === contextId) return h;
    return undefined;
  }

  /** A new hwpt in the binding's context, with a fresh id from the IOASID space. */
  create(binding: Binding, spec: HwptSpec, undo: UndoLog): Hwpt {
    const { objects, ids, hwpts, now } = this.deps;
    const id = ids.take(undo);
    const record: HwptRecord = {
      id,
      contextId: binding.contextId,
      kind: spec.kind,
      ioasId: spec.kind === 'paging' ? spec.space.id : spec.parent.ioasId,
      parentId: spec.kind === 'nested' ? spec.parent.id : null,
      auto: spec.auto,
      nestParent: spec.nestParent,
      pasid: spec.pasid,
      dirtyTracking: spec.dirtyTracking,
      data: spec.data,
      createdAt: new Date(now()).toISOString(),
    };
    hwpts.insertHwpt(record);
    const hwpt: Hwpt = { ...record, type: 'hwpt', id, principalId: binding.principalId, users: new Set() };
    objects.add(hwpt, undo);
    if (spec.kind === 'paging') {
      // The domain joins the IOAS now: existing mappings and allowed ranges must fit it (EADDRINUSE).
      putDomain(spec.space, this.domainOf(hwpt), undo);
      objects.use(hwpt, spec.space, undo);
    } else {
      objects.use(hwpt, spec.parent, undo);
    }
    return hwpt;
  }

  /** What destroying a hwpt undoes: its domain leaves the IOAS (or it leaves its parent), its id is freed. */
  private teardown(hwpt: Hwpt, undo: UndoLog): void {
    const { objects, hwpts, ids } = this.deps;
    if (hwpt.kind === 'paging') {
      const space = objects.find('ioas', hwpt.ioasId)!;
      dropDomain(space, hwptKey(hwpt.id), undo);
      objects.unuse(hwpt, space, undo);
    } else {
      objects.unuse(hwpt, objects.find('hwpt', hwpt.parentId!)!, undo);
    }
    hwpts.deleteHwpt(hwpt.id);
    ids.release(hwpt.id, undo);
  }

  /** Devices attached through their RID, by id. */
  devicesOf(hwpt: Hwpt): string[] {
    const out: string[] = [];
    for (const u of hwpt.users) if (u.type === 'attachment') out.push(u.id as string);
    return out.sort();
  }

  /** PASID attachments as "deviceId/pasid". */
  pasidUsersOf(hwpt: Hwpt): string[] {
    const out: string[] = [];
    for (const u of hwpt.users) if (u.type === 'pasid-attachment') out.push(String(u.id));
    return out.sort();
  }

  /** Nested hwpts over this one. */
  childrenOf(hwpt: Hwpt): number[] {
    const out: number[] = [];
    for (const u of hwpt.users) if (u.type === 'hwpt') out.push(u.id as number);
    return out.sort((a, b) => a - b);
  }

  /** The paging domain a hwpt puts on its IOAS, with the reserved regions of every device behind it. */
  domainOf(hwpt: Hwpt): Domain {
    const { inventory, objects } = this.deps;
    const ids = new Set(this.devicesOf(hwpt));
    for (const c of this.childrenOf(hwpt)) for (const d of this.devicesOf(objects.find('hwpt', c)!)) ids.add(d);
    const devices = [...ids].map((id) => inventory.getDevice(id)).filter((d): d is Device => d !== undefined);
    return iommuDomain(hwptKey(hwpt.id), inventory.getIommu(), devices);
  }

  /** Recomputes the paging domain behind a hwpt after its devices changed (EADDRINUSE on conflict). */
  refreshDomain(hwpt: Hwpt, undo: UndoLog): void {
    const { objects } = this.deps;
    const paging = hwpt.kind === 'paging' ? hwpt : objects.find('hwpt', hwpt.parentId!)!;
    putDomain(objects.find('ioas', paging.ioasId)!, this.domainOf(paging), undo);
  }

  /** Start-up: hwpts back in the table, each using its IOAS or parent (domains follow once devices are back). */
  restore(): void {
    const { objects, hwpts } = this.deps;
    for (const r of hwpts.listHwpts()) {
      const ctx = objects.find('context', r.contextId);
      if (!ctx) continue;
      const hwpt: Hwpt = { ...r, type: 'hwpt', principalId: ctx.principalId, users: new Set() };
      objects.add(hwpt);
      const used = hwpt.kind === 'paging' ? objects.find('ioas', hwpt.ioasId) : objects.find('hwpt', hwpt.parentId!);
      if (used) objects.use(hwpt, used);
    }
  }

  /** Start-up, once attachments are back: every paging domain on its IOAS. */
  restoreDomains(): void {
    for (const h of this.deps.objects.all('hwpt').values()) {
      if (h.kind === 'paging') this.deps.objects.find('ioas', h.ioasId)?.restoreDomain(this.domainOf(h));
    }
  }
}
