import type { Caller, UndoLog } from '../allocator.js';
import { isVirtualKind } from '../devices.js';
import { fail, type Blocker } from '../errors.js';
import type { IovaSpace } from '../iova-space.js';
import type { Binding, Device, Hwpt } from '../model.js';
import { assignableGroup } from '../isolation.js';
import { assertClearance, assertNoKernelDma } from '../ownership.js';
import type { Store } from '../ports.js';
import type { OwnershipPolicy } from './engine.js';
import { accessDomain, dropDomain, iommuDomain, putDomain } from './domains.js';
import type { PolicyDeps } from './group-first.js';

export interface AttachArgs {
  ptId: number;
  pasid?: number | undefined;
  replace?: boolean | undefined;
}

export interface HwptArgs {
  deviceId: string;
  ptId: number;
  nestParent?: boolean | undefined;
  pasid?: boolean | undefined;
  dirtyTracking?: boolean | undefined;
  data?: unknown;
}

/** The page table an attach resolves to: an IOAS (through its automatic hwpt) or a hwpt. */
type Target = { kind: 'ioas'; space: IovaSpace } | { kind: 'hwpt'; hwpt: Hwpt };

const hwptKey = (id: number) => `hwpt:${id}`;
const accessKey = (deviceId: string) => `access:${deviceId}`;

/**
 * device-first: iommufd with VFIO device cdevs (drivers/iommu/iommufd/device.c, hw_pagetable.c,
 * drivers/iommu/iommu.c). A context binds one device, which claims DMA ownership of its whole group;
 * bound devices attach to page tables: an IOAS's automatic hwpt, a manual paging hwpt or a nested
 * one, and per PASID to hwpts allocated for PASID use.
 */
export class DeviceFirst implements OwnershipPolicy {
  readonly name = 'device-first' as const;

  constructor(private readonly deps: PolicyDeps) {}

  private get bindings(): Map<string, Binding> {
    return this.deps.state.bindings;
  }

  private get hwpts(): Map<number, Hwpt> {
    return this.deps.state.hwpts;
  }

  // ---- bind / unbind --------------------------------------------------------------------------

  /**
   * POST /devices/{id}/bind. Already bound by anyone: EINVAL. Clearance: EACCES. Claims the group's
   * DMA ownership: another context owning it, or a kernel-DMA device in it, is EPERM.
   */
  bind(caller: Caller, deviceId: string, contextId: string): Binding {
    const { store, allocator, state } = this.deps;
    const device = this.device(deviceId);
    const groupId = assignableGroup(device);
    const ctx = allocator.getContext(caller, contextId);
    if (this.bindings.has(deviceId)) fail('EINVAL', `device ${deviceId} is already bound`);
    const members = store.devicesInGroup(groupId);
    assertClearance(store.getPrincipal(ctx.principalId)?.clearances ?? [], groupId, members);
    state.assertNoOtherHolder(groupId, contextId, caller, 'EPERM');
    // Virtual devices claim nothing beyond their virtual group: their DMA goes through the parent.
    assertNoKernelDma(groupId, members, 'EPERM');
    for (const d of members) state.assertParentUnowned(d, caller, 'EPERM');
    state.assertParentKeepsKernelDriver(device, caller, 'EPERM');
    return allocator.transact(
      (undo) => {
        const binding: Binding = { deviceId, groupId, contextId, principalId: ctx.principalId, hwptId: null, accessIoasId: null, pasids: new Map() };
        this.bindings.set(deviceId, binding);
        undo.push(() => this.bindings.delete(deviceId));
        this.persist(binding);
        return binding;
      },
      { actor: caller.id, action: 'device.bind', target: `device:${deviceId}` },
    );
  }

  /** POST /devices/{id}/unbind: every PASID, then the device, is detached; the last unbind releases the group. */
  unbind(caller: Caller, deviceId: string): void {
    const binding = this.mine(caller, deviceId);
    this.deps.allocator.transact((undo) => this.unbindNow(binding, undo), { actor: caller.id, action: 'device.unbind', target: `device:${deviceId}` });
  }

  // ---- attach / detach ------------------------------------------------------------------------

  /** POST /devices/{id}/attach {ptId, pasid?, replace?} (SPEC 3 device-first 2-4). */
  attach(caller: Caller, deviceId: string, args: AttachArgs): Binding {
    const binding = this.mine(caller, deviceId);
    const target = this.target(binding, args.ptId);
    const device = this.device(deviceId);
    return this.deps.allocator.transact(
      (undo) => {
        if (args.pasid !== undefined) this.attachPasid(binding, device, target, args.pasid, args.replace === true, undo);
        else if (isVirtualKind(device.kind)) this.attachAccess(binding, target, args.replace === true, undo);
        else this.attachRid(binding, target, args.replace === true, undo);
        return binding;
      },
      { actor: caller.id, action: args.replace ? 'device.replace' : 'device.attach', target: `device:${deviceId}` },
    );
  }

  /** POST /devices/{id}/detach {pasid?}: not attached is a no-op success. */
  detach(caller: Caller, deviceId: string, pasid?: number): Binding {
    const binding = this.mine(caller, deviceId);
    return this.deps.allocator.transact(
      (undo) => {
        if (pasid !== undefined) this.detachPasid(binding, pasid, undo);
        else this.detachRid(binding, undo);
        return binding;
      },
      { actor: caller.id, action: 'device.detach', target: `device:${deviceId}` },
    );
  }

  private attachRid(binding: Binding, target: Target, replace: boolean, undo: UndoLog): void {
    if (binding.hwptId !== null && !replace) {
      fail('EBUSY', `device ${binding.deviceId} is already attached to hwpt ${binding.hwptId}: use replace`, {
        blockers: [{ kind: 'hwpt', id: String(binding.hwptId), reason: `${binding.deviceId} attached`, owner: binding.contextId }],
      });
    }
    if (binding.hwptId === null && replace) fail('EINVAL', `device ${binding.deviceId} is not attached: nothing to replace`);
    const current = binding.hwptId === null ? undefined : this.hwpts.get(binding.hwptId);
    const wanted = target.kind === 'hwpt' ? target.hwpt : this.autoHwptOf(target.space, binding.contextId);
    if (current && wanted && current.id === wanted.id) return; // replace with the same page table
    // Devices of one group share one page table: they can reach each other anyway.
    for (const peer of this.bindings.values()) {
      if (peer.groupId !== binding.groupId || peer.deviceId === binding.deviceId || peer.hwptId === null) continue;
      if (!wanted || peer.hwptId !== wanted.id) {
        fail('EINVAL', `device ${peer.deviceId} of the same group is attached to hwpt ${peer.hwptId}: a group shares one page table`);
      }
    }
    // A failed replace keeps the old attachment: the transaction undoes the detach below.
    if (current) this.detachRid(binding, undo);
    const hwpt = wanted ?? this.newHwpt(binding, { kind: 'paging', space: (target as { space: IovaSpace }).space, auto: true, nestParent: false, pasid: false, dirtyTracking: false, data: null }, undo);
    hwpt.devices.add(binding.deviceId);
    undo.push(() => hwpt.devices.delete(binding.deviceId));
    this.refreshDomain(hwpt, undo);
    this.setBinding(binding, { hwptId: hwpt.id }, undo);
  }

  private attachAccess(binding: Binding, target: Target, replace: boolean, undo: UndoLog): void {
    if (target.kind !== 'ioas') fail('EINVAL', `virtual device ${binding.deviceId} attaches only to an ioas, through its parent`);
    if (binding.accessIoasId !== null && !replace) {
      fail('EBUSY', `device ${binding.deviceId} is already attached to ioas ${binding.accessIoasId}: use replace`, {
        blockers: [{ kind: 'ioas', id: String(binding.accessIoasId), reason: `${binding.deviceId} attached`, owner: binding.contextId }],
      });
    }
    if (binding.accessIoasId === null && replace) fail('EINVAL', `device ${binding.deviceId} is not attached: nothing to replace`);
    if (binding.accessIoasId === target.space.id) return;
    if (binding.accessIoasId !== null) this.detachRid(binding, undo);
    putDomain(target.space, accessDomain(accessKey(binding.deviceId)), undo);
    this.deps.allocator.hold(target.space.id, `device ${binding.deviceId}`, undo);
    this.setBinding(binding, { accessIoasId: target.space.id }, undo);
  }

  private detachRid(binding: Binding, undo: UndoLog): void {
    const { allocator } = this.deps;
    if (binding.accessIoasId !== null) {
      const space = allocator.space(binding.accessIoasId)!;
      dropDomain(space, accessKey(binding.deviceId), undo);
      allocator.unhold(space.id, `device ${binding.deviceId}`, undo);
      this.setBinding(binding, { accessIoasId: null }, undo);
      return;
    }
    if (binding.hwptId === null) return;
    const hwpt = this.hwpts.get(binding.hwptId)!;
    hwpt.devices.delete(binding.deviceId);
    undo.push(() => hwpt.devices.add(binding.deviceId));
    this.setBinding(binding, { hwptId: null }, undo);
    // An automatic hwpt lives as long as a device uses it.
    if (hwpt.auto && hwpt.devices.size === 0) this.destroyHwpt(hwpt, undo);
    else this.refreshDomain(hwpt, undo);
  }

  private attachPasid(binding: Binding, device: Device, target: Target, pasid: number, replace: boolean, undo: UndoLog): void {
    const iommu = this.deps.store.getIommu();
    const max = 2 ** iommu.pasidBits - 1;
    if (!device.pasidCapable) fail('EINVAL', `device ${device.id} is not PASID-capable`);
    if (!Number.isInteger(pasid) || pasid < 1 || pasid > max) fail('EINVAL', `pasid must be in [1, ${max}]`);
    if (target.kind !== 'hwpt' || !target.hwpt.pasid) fail('EINVAL', 'a PASID attaches only to a hwpt allocated with pasid: true');
    const current = binding.pasids.get(pasid);
    if (current !== undefined && !replace) {
      fail('EBUSY', `pasid ${pasid} of ${device.id} is already attached to hwpt ${current}: use replace`, {
        blockers: [{ kind: 'hwpt', id: String(current), reason: `${device.id} pasid ${pasid} attached`, owner: binding.contextId }],
      });
    }
    if (current === undefined && replace) fail('EINVAL', `pasid ${pasid} of ${device.id} is not attached: nothing to replace`);
    if (current === target.hwpt.id) return;
    if (current === undefined) {
      const quota = this.deps.store.getPrincipal(binding.principalId)?.quotas.maxPasids ?? 0;
      const used = [...this.bindings.values()].filter((b) => b.principalId === binding.principalId).reduce((n, b) => n + b.pasids.size, 0);
      if (used + 1 > quota) fail('ENOSPC', `maxPasids quota of ${quota} reached`);
    } else {
      this.detachPasid(binding, pasid, undo);
    }
    const hwpt = target.hwpt;
    const key = `${binding.deviceId}/${pasid}`;
    hwpt.pasidUsers.add(key);
    undo.push(() => hwpt.pasidUsers.delete(key));
    binding.pasids.set(pasid, hwpt.id);
    undo.push(() => binding.pasids.delete(pasid));
    this.deps.store.putPasid(binding.deviceId, pasid, hwpt.id);
  }

  private detachPasid(binding: Binding, pasid: number, undo: UndoLog): void {
    const hwptId = binding.pasids.get(pasid);
    if (hwptId === undefined) return;
    const hwpt = this.hwpts.get(hwptId)!;
    const key = `${binding.deviceId}/${pasid}`;
    hwpt.pasidUsers.delete(key);
    undo.push(() => hwpt.pasidUsers.add(key));
    binding.pasids.delete(pasid);
    undo.push(() => binding.pasids.set(pasid, hwptId));
    this.deps.store.deletePasid(binding.deviceId, pasid);
  }

  // ---- hwpts ----------------------------------------------------------------------------------

  /**
   * POST /hwpts: a manual paging hwpt on an IOAS (its domain joins the IOAS at once), or a nested
   * one over a paging hwpt allocated with nestParent (which needs `data`, the stage-1 description).
   */
  allocHwpt(caller: Caller, args: HwptArgs): Hwpt {
    const binding = this.bindings.get(args.deviceId);
    if (!binding || (caller.role !== 'admin' && binding.principalId !== caller.id)) fail('ENOENT', `device ${args.deviceId} is not bound by you`);
    const device = this.device(args.deviceId);
    const space = this.deps.allocator.space(args.ptId);
    const parent = this.hwpts.get(args.ptId);
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
    const features = this.deps.store.getIommu().features;
    if (args.dirtyTracking && !features.dirtyTracking) fail('EOPNOTSUPP', 'the iommu has no dirty tracking');
    if (args.nestParent && !features.nesting) fail('EOPNOTSUPP', 'the iommu has no nesting support');
    if (args.pasid && !features.pasid) fail('EOPNOTSUPP', 'the iommu has no PASID support');
    if (nested && (args.data === undefined || args.data === null || typeof args.data !== 'object')) fail('EINVAL', 'a nested hwpt needs data describing its stage-1 table');
    if (nested && args.nestParent) fail('EINVAL', 'a nested hwpt cannot itself be a nest parent');
    return this.deps.allocator.transact(
      (undo) =>
        this.newHwpt(
          binding,
          nested
            ? { kind: 'nested', parent: parent!, auto: false, nestParent: false, pasid: args.pasid === true, dirtyTracking: false, data: args.data }
            : { kind: 'paging', space: space!, auto: false, nestParent: args.nestParent === true, pasid: args.pasid === true, dirtyTracking: args.dirtyTracking === true, data: null },
          undo,
        ),
      { actor: caller.id, action: 'hwpt.alloc', target: `ioas:${args.ptId}` },
    );
  }

  /** DELETE /hwpts/{id}: refused EBUSY while devices, PASIDs or nested children use it. */
  deleteHwpt(caller: Caller, id: number): void {
    const hwpt = this.getHwpt(caller, id);
    const blockers: Blocker[] = [
      ...[...hwpt.devices].map((d) => ({ kind: 'device' as const, id: d, reason: 'attached', owner: hwpt.contextId })),
      ...[...hwpt.pasidUsers].map((u) => ({ kind: 'device' as const, id: u.split('/')[0]!, reason: `pasid ${u.split('/')[1]} attached`, owner: hwpt.contextId })),
      ...[...hwpt.children].map((c) => ({ kind: 'hwpt' as const, id: String(c), reason: 'nested child', owner: hwpt.contextId })),
    ];
    if (blockers.length > 0) fail('EBUSY', `hwpt ${id} is in use`, { blockers });
    this.deps.allocator.transact((undo) => this.destroyHwpt(hwpt, undo), { actor: caller.id, action: 'hwpt.destroy', target: `hwpt:${id}` });
  }

  getHwpt(caller: Caller, id: number): Hwpt {
    const hwpt = this.hwpts.get(id);
    if (!hwpt || (caller.role !== 'admin' && hwpt.principalId !== caller.id)) fail('ENOENT', `hwpt ${id} does not exist`);
    return hwpt;
  }

  listHwpts(caller: Caller): Hwpt[] {
    return [...this.hwpts.values()].filter((h) => caller.role === 'admin' || h.principalId === caller.id);
  }

  listBindings(caller: Caller): Binding[] {
    return [...this.bindings.values()].filter((b) => caller.role === 'admin' || b.principalId === caller.id);
  }

  // ---- context release and restart --------------------------------------------------------------

  /** Context release: every binding (PASIDs, attachment, binding), then its hwpts, nested first. */
  releaseContext(contextId: string, undo: UndoLog): void {
    for (const b of [...this.bindings.values()].filter((x) => x.contextId === contextId)) this.unbindNow(b, undo);
    const mine = [...this.hwpts.values()].filter((h) => h.contextId === contextId);
    for (const h of mine.filter((x) => x.kind === 'nested')) this.destroyHwpt(h, undo);
    for (const h of mine.filter((x) => x.kind === 'paging' && this.hwpts.has(x.id))) this.destroyHwpt(h, undo);
  }

  restore(rows: ReturnType<Store['loadOwnership']>): void {
    const { allocator, store } = this.deps;
    for (const r of rows.hwpts) {
      const ctx = allocator.context(r.contextId);
      if (!ctx) continue;
      const hwpt: Hwpt = { ...r, principalId: ctx.principalId, devices: new Set(), pasidUsers: new Set(), children: new Set() };
      this.hwpts.set(hwpt.id, hwpt);
      allocator.reserveId(hwpt.id);
      if (hwpt.kind === 'paging') allocator.hold(hwpt.ioasId, `hwpt ${hwpt.id}`);
      if (hwpt.parentId !== null) this.hwpts.get(hwpt.parentId)?.children.add(hwpt.id);
    }
    for (const r of rows.bindings) {
      const ctx = allocator.context(r.contextId);
      const device = store.getDevice(r.deviceId);
      if (!ctx || !device || device.groupId === null) continue;
      this.bindings.set(r.deviceId, { deviceId: r.deviceId, groupId: device.groupId, contextId: r.contextId, principalId: ctx.principalId, hwptId: r.hwptId, accessIoasId: r.accessIoasId, pasids: new Map() });
      if (r.hwptId !== null) this.hwpts.get(r.hwptId)?.devices.add(r.deviceId);
      if (r.accessIoasId !== null) {
        allocator.hold(r.accessIoasId, `device ${r.deviceId}`);
        allocator.space(r.accessIoasId)?.restoreDomain(accessDomain(accessKey(r.deviceId)));
      }
    }
    for (const p of rows.pasids) {
      this.bindings.get(p.deviceId)?.pasids.set(p.pasid, p.hwptId);
      this.hwpts.get(p.hwptId)?.pasidUsers.add(`${p.deviceId}/${p.pasid}`);
    }
    for (const h of this.hwpts.values()) if (h.kind === 'paging') allocator.space(h.ioasId)?.restoreDomain(this.domainOf(h));
  }

  // ---- internals ------------------------------------------------------------------------------

  private unbindNow(binding: Binding, undo: UndoLog): void {
    for (const pasid of [...binding.pasids.keys()]) this.detachPasid(binding, pasid, undo);
    this.detachRid(binding, undo);
    this.deps.store.deleteBinding(binding.deviceId);
    this.bindings.delete(binding.deviceId);
    undo.push(() => this.bindings.set(binding.deviceId, binding));
  }

  /** Resolves ptId within the binding's context: unknown, or another context's, is ENOENT. */
  private target(binding: Binding, ptId: number): Target {
    const space = this.deps.allocator.space(ptId);
    if (space && space.contextId === binding.contextId) return { kind: 'ioas', space };
    const hwpt = this.hwpts.get(ptId);
    if (hwpt && hwpt.contextId === binding.contextId) return { kind: 'hwpt', hwpt };
    fail('ENOENT', `no ioas or hwpt ${ptId} in the device's context`);
  }

  /** The automatic hwpt an IOAS already has for this context, if any. */
  private autoHwptOf(space: IovaSpace, contextId: string): Hwpt | undefined {
    for (const h of this.hwpts.values()) if (h.auto && h.ioasId === space.id && h.contextId === contextId) return h;
    return undefined;
  }

  private newHwpt(
    binding: Binding,
    spec:
      | { kind: 'paging'; space: IovaSpace; auto: boolean; nestParent: boolean; pasid: boolean; dirtyTracking: boolean; data: null }
      | { kind: 'nested'; parent: Hwpt; auto: false; nestParent: false; pasid: boolean; dirtyTracking: false; data: unknown },
    undo: UndoLog,
  ): Hwpt {
    const { allocator, store } = this.deps;
    const id = allocator.allocateId(undo);
    const ioasId = spec.kind === 'paging' ? spec.space.id : spec.parent.ioasId;
    const hwpt: Hwpt = {
      id,
      contextId: binding.contextId,
      principalId: binding.principalId,
      kind: spec.kind,
      ioasId,
      parentId: spec.kind === 'nested' ? spec.parent.id : null,
      auto: spec.auto,
      nestParent: spec.nestParent,
      pasid: spec.pasid,
      dirtyTracking: spec.dirtyTracking,
      data: spec.data,
      createdAt: new Date().toISOString(),
      devices: new Set(),
      pasidUsers: new Set(),
      children: new Set(),
    };
    store.insertHwpt(hwpt);
    this.hwpts.set(id, hwpt);
    undo.push(() => this.hwpts.delete(id));
    if (spec.kind === 'paging') {
      // The domain joins the IOAS now: existing mappings and allowed ranges must fit it (EADDRINUSE).
      putDomain(spec.space, this.domainOf(hwpt), undo);
      allocator.hold(ioasId, `hwpt ${id}`, undo);
    } else {
      spec.parent.children.add(id);
      undo.push(() => spec.parent.children.delete(id));
    }
    return hwpt;
  }

  private destroyHwpt(hwpt: Hwpt, undo: UndoLog): void {
    const { allocator, store } = this.deps;
    if (hwpt.kind === 'paging') {
      const space = allocator.space(hwpt.ioasId)!;
      dropDomain(space, hwptKey(hwpt.id), undo);
      allocator.unhold(space.id, `hwpt ${hwpt.id}`, undo);
    } else {
      const parent = this.hwpts.get(hwpt.parentId!)!;
      parent.children.delete(hwpt.id);
      undo.push(() => parent.children.add(hwpt.id));
    }
    store.deleteHwpt(hwpt.id);
    this.hwpts.delete(hwpt.id);
    undo.push(() => this.hwpts.set(hwpt.id, hwpt));
    allocator.freeId(hwpt.id, undo);
  }

  /** The paging domain a hwpt puts on its IOAS, with the reserved regions of every device behind it. */
  private domainOf(hwpt: Hwpt): ReturnType<typeof iommuDomain> {
    const { store } = this.deps;
    const ids = new Set(hwpt.devices);
    for (const c of hwpt.children) for (const d of this.hwpts.get(c)?.devices ?? []) ids.add(d);
    const devices = [...ids].map((id) => store.getDevice(id)).filter((d): d is Device => d !== undefined);
    return iommuDomain(hwptKey(hwpt.id), store.getIommu(), devices);
  }

  /** Recomputes the paging domain behind a hwpt after its devices changed (EADDRINUSE on conflict). */
  private refreshDomain(hwpt: Hwpt, undo: UndoLog): void {
    const paging = hwpt.kind === 'paging' ? hwpt : this.hwpts.get(hwpt.parentId!)!;
    putDomain(this.deps.allocator.space(paging.ioasId)!, this.domainOf(paging), undo);
  }

  private setBinding(binding: Binding, change: Partial<Pick<Binding, 'hwptId' | 'accessIoasId'>>, undo: UndoLog): void {
    const before = { hwptId: binding.hwptId, accessIoasId: binding.accessIoasId };
    Object.assign(binding, change);
    undo.push(() => Object.assign(binding, before));
    this.persist(binding);
  }

  private persist(binding: Binding): void {
    this.deps.store.putBinding(binding.deviceId, binding.contextId, binding.hwptId, binding.accessIoasId);
  }

  private device(id: string): Device {
    const device = this.deps.store.getDevice(id);
    if (!device) fail('ENOENT', `device ${id} does not exist`);
    return device;
  }

  /** The caller's binding of the device; not bound (or bound by another principal) is EINVAL. */
  private mine(caller: Caller, deviceId: string): Binding {
    this.device(deviceId);
    const binding = this.bindings.get(deviceId);
    if (!binding || (caller.role !== 'admin' && binding.principalId !== caller.id)) fail('EINVAL', `device ${deviceId} is not bound by you`);
    return binding;
  }
}
