import { visibleTo, type Caller } from '../caller.js';
import { isVirtualKind } from '../devices.js';
import { fail } from '../errors.js';
import type { IovaSpace } from '../iova-space.js';
import type { Attachment, Binding, Device, Hwpt } from '../model.js';
import { assignableGroup } from '../isolation.js';
import { assertClearance, assertNoKernelDma } from '../ownership.js';
import type { UndoLog } from '../tx.js';
import { accessDomain, dropDomain, putDomain } from './domains.js';
import { Hwpts } from './hwpts.js';
import { Pasids } from './pasids.js';
import { groupEvent, type OwnershipPolicy, type PolicyDeps } from './types.js';

export interface AttachArgs {
  ptId: number;
  pasid?: number | undefined;
  replace?: boolean | undefined;
}

/** The page table an attach resolves to: an IOAS (through its automatic hwpt) or a hwpt. */
type Target = { kind: 'ioas'; space: IovaSpace } | { kind: 'hwpt'; hwpt: Hwpt };

const accessKey = (deviceId: string) => `access:${deviceId}`;

/**
 * device-first: iommufd with VFIO device cdevs (drivers/iommu/iommufd/device.c, drivers/iommu/iommu.c).
 * A context binds one device, which claims DMA ownership of its whole group; a bound device attaches
 * (an attachment object) to an IOAS's automatic hwpt, a manual paging hwpt or a nested one, and per
 * PASID to hwpts allocated for PASID use (pasids.ts). Hwpts live in hwpts.ts.
 */
export class DeviceFirst implements OwnershipPolicy {
  readonly name = 'device-first' as const;
  readonly hwpts: Hwpts;
  private readonly pasids: Pasids;

  constructor(private readonly deps: PolicyDeps) {
    this.hwpts = new Hwpts(deps);
    this.pasids = new Pasids(deps);
    deps.objects.define('binding', (binding) => {
      deps.bindings.deleteBinding(binding.deviceId);
      // The last device of the group out releases the group's DMA ownership.
      if (this.peersOf(binding).length === 0) deps.tx.emit(groupEvent('group.released', binding));
    });
    deps.objects.define('attachment', (attachment, undo) => this.teardownAttachment(attachment, undo));
  }

  // ---- bind / unbind --------------------------------------------------------------------------

  /**
   * POST /devices/{id}/bind. Already bound by anyone: EINVAL. Clearance: EACCES. Claims the group's
   * DMA ownership: another context owning it, or a kernel-DMA device in it, is EPERM.
   */
  bind(caller: Caller, deviceId: string, contextId: string): Binding {
    const { inventory, objects, state, tx } = this.deps;
    const device = this.device(deviceId);
    const groupId = assignableGroup(device);
    const ctx = objects.get(caller, 'context', contextId);
    if (objects.find('binding', deviceId)) fail('EINVAL', `device ${deviceId} is already bound`);
    const members = inventory.devicesInGroup(groupId);
    assertClearance(this.deps.clearancesOf(ctx.principalId), groupId, members);
    state.assertNoOtherHolder(groupId, contextId, caller, 'EPERM');
    // Virtual devices claim nothing beyond their virtual group: their DMA goes through the parent.
    assertNoKernelDma(groupId, members, 'EPERM');
    for (const d of members) state.assertParentUnowned(d, caller, 'EPERM');
    state.assertParentKeepsKernelDriver(device, caller, 'EPERM');
    return tx.run(
      (undo) => {
        const binding: Binding = {
          type: 'binding',
          id: deviceId,
          deviceId,
          groupId,
          contextId,
          principalId: ctx.principalId,
          users: new Set(),
          attachment: null,
          pasids: new Map(),
        };
        const first = this.peersOf(binding).length === 0;
        objects.add(binding, undo);
        this.persist(binding);
        // The first device bound claims the whole group's DMA ownership for the context.
        if (first) this.deps.tx.emit(groupEvent('group.claimed', binding, members.map((d) => d.id)));
        return binding;
      },
      { actor: caller.id, action: 'device.bind', target: `device:${deviceId}` },
    );
  }

  /** POST /devices/{id}/unbind: every PASID, then the device, is detached; the last unbind releases the group. */
  unbind(caller: Caller, deviceId: string): void {
    const binding = this.mine(caller, deviceId);
    this.deps.tx.run((undo) => this.deps.objects.destroyWithUsers(binding, undo), { actor: caller.id, action: 'device.unbind', target: `device:${deviceId}` });
  }

  // ---- attach / detach ------------------------------------------------------------------------

  /** POST /devices/{id}/attach {ptId, pasid?, replace?} (SPEC 3 device-first 2-4). */
  attach(caller: Caller, deviceId: string, args: AttachArgs): Binding {
    const binding = this.mine(caller, deviceId);
    const target = this.target(binding, args.ptId);
    const device = this.device(deviceId);
    const replace = args.replace === true;
    return this.deps.tx.run(
      (undo) => {
        if (args.pasid !== undefined) this.pasids.attach(binding, device, target.kind === 'hwpt' ? target.hwpt : null, args.pasid, replace, undo);
        else if (isVirtualKind(device.kind)) this.attachAccess(binding, target, replace, undo);
        else this.attachRid(binding, target, replace, undo);
        return binding;
      },
      { actor: caller.id, action: args.replace ? 'device.replace' : 'device.attach', target: `device:${deviceId}` },
    );
  }

  /** POST /devices/{id}/detach {pasid?}: not attached is a no-op success. */
  detach(caller: Caller, deviceId: string, pasid?: number): Binding {
    const binding = this.mine(caller, deviceId);
    return this.deps.tx.run(
      (undo) => {
        if (pasid !== undefined) this.pasids.detach(binding, pasid, undo);
        else if (binding.attachment) this.deps.objects.destroy(binding.attachment, undo);
        return binding;
      },
      { actor: caller.id, action: 'device.detach', target: `device:${deviceId}` },
    );
  }

  /** The hwpt a binding's RID is attached to, or null (also null for a virtual device's access). */
  hwptIdOf(binding: Binding): number | null {
    return binding.attachment?.target.type === 'hwpt' ? binding.attachment.target.id : null;
  }

  /** The IOAS a binding's DMA lands in: its hwpt's, or a virtual device's access IOAS. */
  ioasIdOf(binding: Binding): number | null {
    const target = binding.attachment?.target;
    if (!target) return null;
    return target.type === 'ioas' ? target.id : (this.deps.objects.find('hwpt', target.id)?.ioasId ?? null);
  }

  listBindings(caller: Caller): Binding[] {
    return this.deps.objects.visible(caller, 'binding');
  }

  /**
   * Attaches the RID. A replace makes the new page table (an automatic hwpt included) before the old
   * attachment goes, as iommufd_device_change_pt does: the old automatic hwpt is destroyed only
   * after, so its id is never handed to the new one. A failed replace keeps the old attachment.
   */
  private attachRid(binding: Binding, target: Target, replace: boolean, undo: UndoLog): void {
    const { objects } = this.deps;
    const currentId = this.hwptIdOf(binding);
    if (currentId !== null && !replace) {
      fail('EBUSY', `device ${binding.deviceId} is already attached to hwpt ${currentId}: use replace`, {
        blockers: [{ kind: 'hwpt', id: String(currentId), reason: `${binding.deviceId} attached`, owner: binding.contextId }],
      });
    }
    if (currentId === null && replace) fail('EINVAL', `device ${binding.deviceId} is not attached: nothing to replace`);
    const wanted = target.kind === 'hwpt' ? target.hwpt : this.hwpts.autoOf(target.space, binding.contextId);
    if (currentId !== null && wanted && currentId === wanted.id) return; // replace with the same page table
    // Devices of one group share one page table: they can reach each other anyway.
    for (const peer of objects.all('binding').values()) {
      const peerHwpt = this.hwptIdOf(peer);
      if (peer.groupId !== binding.groupId || peer.deviceId === binding.deviceId || peerHwpt === null) continue;
      if (!wanted || peerHwpt !== wanted.id) {
        fail('EINVAL', `device ${peer.deviceId} of the same group is attached to hwpt ${peerHwpt}: a group shares one page table`);
      }
    }
    const hwpt =
      wanted ??
      this.hwpts.create(binding, { kind: 'paging', space: (target as { space: IovaSpace }).space, auto: true, nestParent: false, pasid: false, dirtyTracking: false, data: null }, undo);
    if (binding.attachment) objects.destroy(binding.attachment, undo);
    this.link(binding, { type: 'hwpt', id: hwpt.id }, hwpt, undo);
    this.hwpts.refreshDomain(hwpt, undo);
  }

  /** A virtual device reaches an IOAS through its parent (iommufd's emulated access): no hwpt. */
  private attachAccess(binding: Binding, target: Target, replace: boolean, undo: UndoLog): void {
    if (target.kind !== 'ioas') fail('EINVAL', `virtual device ${binding.deviceId} attaches only to an ioas, through its parent`);
    const current = binding.attachment?.target.id ?? null;
    if (current !== null && !replace) {
      fail('EBUSY', `device ${binding.deviceId} is already attached to ioas ${current}: use replace`, {
        blockers: [{ kind: 'ioas', id: String(current), reason: `${binding.deviceId} attached`, owner: binding.contextId }],
      });
    }
    if (current === null && replace) fail('EINVAL', `device ${binding.deviceId} is not attached: nothing to replace`);
    if (current === target.space.id) return;
    if (binding.attachment) this.deps.objects.destroy(binding.attachment, undo);
    putDomain(target.space, accessDomain(accessKey(binding.deviceId)), undo);
    this.link(binding, { type: 'ioas', id: target.space.id }, target.space, undo);
  }

  /** The attachment object: it uses its page table and its binding, and is written with the binding row. */
  private link(binding: Binding, ref: Attachment['target'], pt: Hwpt | IovaSpace, undo?: UndoLog): void {
    const { objects } = this.deps;
    const attachment: Attachment = {
      type: 'attachment',
      id: binding.deviceId,
      deviceId: binding.deviceId,
      target: ref,
      contextId: binding.contextId,
      principalId: binding.principalId,
      users: new Set(),
    };
    objects.add(attachment, undo);
    objects.use(attachment, pt, undo);
    objects.use(attachment, binding, undo);
    this.setAttachment(binding, attachment, undo);
  }

  /** What detaching undoes: the domain or access leaves the IOAS; an automatic hwpt goes with its last device. */
  private teardownAttachment(attachment: Attachment, undo: UndoLog): void {
    const { objects } = this.deps;
    const binding = objects.find('binding', attachment.deviceId)!;
    objects.unuse(attachment, binding, undo);
    this.setAttachment(binding, null, undo);
    if (attachment.target.type === 'ioas') {
      const space = objects.find('ioas', attachment.target.id)!;
      objects.unuse(attachment, space, undo);
      dropDomain(space, accessKey(attachment.deviceId), undo);
      return;
    }
    const hwpt = objects.find('hwpt', attachment.target.id)!;
    objects.unuse(attachment, hwpt, undo);
    // An automatic hwpt lives as long as a device uses it.
    if (hwpt.auto && hwpt.users.size === 0) objects.destroy(hwpt, undo);
    else this.hwpts.refreshDomain(hwpt, undo);
  }

  private setAttachment(binding: Binding, attachment: Attachment | null, undo?: UndoLog): void {
    const before = binding.attachment;
    binding.attachment = attachment;
    undo?.push(() => (binding.attachment = before));
    if (undo) this.persist(binding);
  }

  // ---- restart ----------------------------------------------------------------------------------

  restore(): void {
    const { objects, bindings, inventory } = this.deps;
    this.hwpts.restore();
    for (const r of bindings.listBindings()) {
      const ctx = objects.find('context', r.contextId);
      const device = inventory.getDevice(r.deviceId);
      if (!ctx || !device || device.groupId === null) continue;
      const binding: Binding = {
        type: 'binding',
        id: r.deviceId,
        deviceId: r.deviceId,
        groupId: device.groupId,
        contextId: r.contextId,
        principalId: ctx.principalId,
        users: new Set(),
        attachment: null,
        pasids: new Map(),
      };
      objects.add(binding);
      const hwpt = r.hwptId === null ? undefined : objects.find('hwpt', r.hwptId);
      const space = r.accessIoasId === null ? undefined : objects.find('ioas', r.accessIoasId);
      if (hwpt) this.link(binding, { type: 'hwpt', id: hwpt.id }, hwpt);
      else if (space) {
        this.link(binding, { type: 'ioas', id: space.id }, space);
        space.restoreDomain(accessDomain(accessKey(r.deviceId)));
      }
    }
    this.pasids.restore();
    this.hwpts.restoreDomains();
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Other bindings of the binding's group. */
  private peersOf(binding: Binding): Binding[] {
    return [...this.deps.objects.all('binding').values()].filter((b) => b.groupId === binding.groupId && b.deviceId !== binding.deviceId);
  }

  private persist(binding: Binding): void {
    const target = binding.attachment?.target;
    this.deps.bindings.putBinding(binding.deviceId, binding.contextId, target?.type === 'hwpt' ? target.id : null, target?.type === 'ioas' ? target.id : null);
  }

  /** Resolves ptId within the binding's context: unknown, or another context's, is ENOENT. */
  private target(binding: Binding, ptId: number): Target {
    const { objects } = this.deps;
    const space = objects.find('ioas', ptId);
    if (space && space.contextId === binding.contextId) return { kind: 'ioas', space };
    const hwpt = objects.find('hwpt', ptId);
    if (hwpt && hwpt.contextId === binding.contextId) return { kind: 'hwpt', hwpt };
    fail('ENOENT', `no ioas or hwpt ${ptId} in the device's context`);
  }

  private device(id: string): Device {
    const device = this.deps.inventory.getDevice(id);
    if (!device) fail('ENOENT', `device ${id} does not exist`);
    return device;
  }

  /** The caller's binding of the device; not bound (or bound by another principal) is EINVAL. */
  private mine(caller: Caller, deviceId: string): Binding {
    this.device(deviceId);
    const binding = this.deps.objects.find('binding', deviceId);
    if (!binding || !visibleTo(caller, binding)) fail('EINVAL', `device ${deviceId} is not bound by you`);
    return binding;
  }
}
