import type { Allocator, Caller, UndoLog } from '../allocator.js';
import { fail } from '../errors.js';
import type { Device, GroupHold, GroupRecord } from '../model.js';
import { assignableGroup } from '../isolation.js';
import { assertClearance, assertNoKernelDma, type OwnershipState } from '../ownership.js';
import type { Store } from '../ports.js';
import type { OwnershipPolicy } from './engine.js';
import { accessDomain, dropDomain, iommuDomain, putDomain } from './domains.js';

export interface PolicyDeps {
  store: Store;
  allocator: Allocator;
  state: OwnershipState;
}

const CONTAINER = 'container';

/**
 * group-first: legacy VFIO (drivers/vfio/group.c, container.c). A context opens a whole group, puts
 * it in a container (an IOAS, which is when the group's DMA ownership is claimed), then opens
 * devices of it. Mappings follow the type1v2 rules through the container's IOMMU model.
 */
export class GroupFirst implements OwnershipPolicy {
  readonly name = 'group-first' as const;

  constructor(private readonly deps: PolicyDeps) {}

  private get holds(): Map<number, GroupHold> {
    return this.deps.state.groupHolds;
  }

  /** POST /groups/{id}/open: open by anyone already is EBUSY; clearance for every label is EACCES. */
  openGroup(caller: Caller, groupId: number, contextId: string): GroupHold {
    const { store, allocator, state } = this.deps;
    const group = this.group(groupId);
    const ctx = allocator.getContext(caller, contextId);
    if (this.holds.has(groupId)) {
      // VFIO allows one open of a group at a time, even by the same process.
      state.assertNoOtherHolder(groupId, contextId, caller, 'EBUSY');
      fail('EBUSY', `group ${groupId} is already open in this context`, { blockers: [{ kind: 'group', id: String(groupId), reason: 'already open', owner: contextId }] });
    }
    // A device bound under device-first would hold the group too (the policies never mix, but the
    // rule is the same one).
    state.assertNoOtherHolder(groupId, contextId, caller, 'EBUSY');
    const members = store.devicesInGroup(group.id);
    assertClearance(this.clearances(ctx.principalId), groupId, members);
    // Opening makes the context the group's owner: an mdev's parent and its mdevs never share one.
    for (const d of members) state.assertParentUnowned(d, caller, 'EBUSY');
    return allocator.transact(
      (undo) => {
        const hold: GroupHold = { groupId, contextId, principalId: ctx.principalId, ioasId: null, deviceOpens: new Map() };
        store.putGroupHold(groupId, contextId, null);
        this.holds.set(groupId, hold);
        undo.push(() => this.holds.delete(groupId));
        return hold;
      },
      { actor: caller.id, action: 'group.open', target: `group:${groupId}` },
    );
  }

  /** POST /groups/{id}/close: releases the group's devices, container membership and ownership. */
  closeGroup(caller: Caller, groupId: number): void {
    const hold = this.mine(caller, groupId);
    this.deps.allocator.transact((undo) => this.close(hold, undo), { actor: caller.id, action: 'group.close', target: `group:${groupId}` });
  }

  /**
   * PUT /groups/{id}/container: joins an IOAS and claims DMA ownership of the whole group. The first
   * group fixes the container's IOMMU model; a later one must agree with the existing mappings.
   */
  setContainer(caller: Caller, groupId: number, ioasId: number): GroupHold {
    const { store, allocator, state } = this.deps;
    const hold = this.mine(caller, groupId);
    const space = allocator.getIoas(caller, ioasId);
    if (space.contextId !== hold.contextId) fail('EINVAL', `ioas ${ioasId} belongs to another context than group ${groupId}`);
    if (hold.ioasId !== null) fail('EINVAL', `group ${groupId} is already in container ${hold.ioasId}`);
    const group = this.group(groupId);
    const members = store.devicesInGroup(groupId);
    assertNoKernelDma(groupId, members, 'EPERM');
    for (const d of members) state.assertParentKeepsKernelDriver(d, caller, 'EPERM');
    return allocator.transact(
      (undo) => {
        hold.ioasId = ioasId;
        undo.push(() => (hold.ioasId = null));
        // EINVAL, as VFIO_GROUP_SET_CONTAINER does when the new group's IOMMU cannot take the mappings.
        putDomain(space, this.model(space.id, group), undo, 'EINVAL');
        store.putGroupHold(groupId, hold.contextId, ioasId);
        allocator.hold(ioasId, `group ${groupId}`, undo);
        return hold;
      },
      { actor: caller.id, action: 'group.container', target: `group:${groupId}` },
    );
  }

  /** DELETE /groups/{id}/container: not in one is EINVAL; open devices are EBUSY. */
  unsetContainer(caller: Caller, groupId: number): GroupHold {
    const hold = this.mine(caller, groupId);
    if (hold.ioasId === null) fail('EINVAL', `group ${groupId} is not in a container`);
    if (hold.deviceOpens.size > 0) {
      fail('EBUSY', `group ${groupId} has open devices`, {
        blockers: [...hold.deviceOpens.keys()].map((id) => ({ kind: 'device', id, reason: 'open', owner: hold.contextId })),
      });
    }
    return this.deps.allocator.transact(
      (undo) => {
        this.leaveContainer(hold, undo);
        return hold;
      },
      { actor: caller.id, action: 'group.container-leave', target: `group:${groupId}` },
    );
  }

  /** POST /groups/{id}/devices/{deviceId}/open: needs the group open by the caller and in a container. */
  openDevice(caller: Caller, groupId: number, deviceId: string): { deviceId: string; opens: number } {
    const hold = this.held(caller, groupId);
    if (hold.ioasId === null) fail('EINVAL', `group ${groupId} is not in a container: set one before opening devices`);
    const device = this.deps.store.getDevice(deviceId);
    if (device) assignableGroup(device);
    if (!device || device.groupId !== groupId) fail('ENODEV', `device ${deviceId} is not in group ${groupId}`);
    return this.deps.allocator.transact(
      (undo) => {
        const opens = (hold.deviceOpens.get(deviceId) ?? 0) + 1;
        this.setOpens(hold, deviceId, opens, undo);
        return { deviceId, opens };
      },
      { actor: caller.id, action: 'device.open', target: `device:${deviceId}` },
    );
  }

  /** POST /groups/{id}/devices/{deviceId}/close: one open fewer; not open is EINVAL. */
  closeDevice(caller: Caller, groupId: number, deviceId: string): { deviceId: string; opens: number } {
    const hold = this.held(caller, groupId);
    const current = hold.deviceOpens.get(deviceId);
    if (current === undefined) fail('EINVAL', `device ${deviceId} is not open`);
    return this.deps.allocator.transact(
      (undo) => {
        this.setOpens(hold, deviceId, current - 1, undo);
        return { deviceId, opens: current - 1 };
      },
      { actor: caller.id, action: 'device.close', target: `device:${deviceId}` },
    );
  }

  /** Context release: every group the context holds is closed (devices, container, hold). */
  releaseContext(contextId: string, undo: UndoLog): void {
    for (const hold of [...this.holds.values()].filter((h) => h.contextId === contextId)) this.close(hold, undo);
  }

  /** Start-up: puts container models and holds back as they were. */
  restore(rows: ReturnType<Store['loadOwnership']>): void {
    const { allocator, store } = this.deps;
    for (const r of rows.groupHolds) {
      const ctx = allocator.context(r.contextId);
      if (!ctx) continue;
      this.holds.set(r.groupId, { groupId: r.groupId, contextId: r.contextId, principalId: ctx.principalId, ioasId: r.ioasId, deviceOpens: new Map() });
    }
    for (const o of rows.deviceOpens) this.holds.get(o.groupId)?.deviceOpens.set(o.deviceId, o.count);
    for (const hold of this.holds.values()) {
      if (hold.ioasId === null) continue;
      allocator.hold(hold.ioasId, `group ${hold.groupId}`);
      const space = allocator.space(hold.ioasId);
      const group = store.getGroup(hold.groupId);
      if (space && group) space.restoreDomain(this.model(space.id, group));
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private close(hold: GroupHold, undo: UndoLog): void {
    const { store } = this.deps;
    for (const deviceId of [...hold.deviceOpens.keys()]) this.setOpens(hold, deviceId, 0, undo);
    if (hold.ioasId !== null) this.leaveContainer(hold, undo);
    store.deleteGroupHold(hold.groupId);
    this.holds.delete(hold.groupId);
    undo.push(() => this.holds.set(hold.groupId, hold));
  }

  /** The group leaves its container; when the last group goes, the IOMMU model and every mapping go (type1). */
  private leaveContainer(hold: GroupHold, undo: UndoLog): void {
    const { allocator, store } = this.deps;
    const ioasId = hold.ioasId!;
    hold.ioasId = null;
    undo.push(() => (hold.ioasId = ioasId));
    store.putGroupHold(hold.groupId, hold.contextId, null);
    allocator.unhold(ioasId, `group ${hold.groupId}`, undo);
    const space = allocator.space(ioasId)!;
    const rest = [...this.holds.values()].filter((h) => h.ioasId === ioasId);
    if (rest.length === 0) {
      allocator.unmapEverything(space, undo);
      dropDomain(space, CONTAINER, undo);
    } else {
      putDomain(space, this.model(ioasId, store.getGroup(rest[0]!.groupId)!), undo, 'EINVAL');
    }
  }

  /**
   * The container's IOMMU model: the iommu's page sizes, aperture and reserved regions plus every
   * member device's own reserved regions. Containers of virtual groups only get page granularity.
   */
  private model(ioasId: number, joining: GroupRecord): ReturnType<typeof iommuDomain> {
    const { store } = this.deps;
    const groups = new Set([...this.holds.values()].filter((h) => h.ioasId === ioasId).map((h) => h.groupId));
    groups.add(joining.id);
    const hardware = [...groups].map((g) => store.getGroup(g)).filter((g): g is GroupRecord => g?.kind === 'iommu');
    if (hardware.length === 0) return accessDomain(CONTAINER);
    const devices: Device[] = hardware.flatMap((g) => store.devicesInGroup(g.id));
    return iommuDomain(CONTAINER, store.getIommu(), devices);
  }

  private setOpens(hold: GroupHold, deviceId: string, opens: number, undo: UndoLog): void {
    const before = hold.deviceOpens.get(deviceId);
    if (opens === 0) {
      hold.deviceOpens.delete(deviceId);
      this.deps.store.deleteDeviceOpen(deviceId);
    } else {
      hold.deviceOpens.set(deviceId, opens);
      this.deps.store.putDeviceOpen(deviceId, hold.groupId, opens);
    }
    undo.push(() => (before === undefined ? hold.deviceOpens.delete(deviceId) : hold.deviceOpens.set(deviceId, before)));
  }

  private group(groupId: number): GroupRecord {
    const group = this.deps.store.getGroup(groupId);
    if (!group) fail('ENOENT', `group ${groupId} does not exist`);
    return group;
  }

  private clearances(principalId: string): string[] {
    return this.deps.store.getPrincipal(principalId)?.clearances ?? [];
  }

  /** The caller's hold on an existing group (ENOENT when there is no such group). */
  private mine(caller: Caller, groupId: number): GroupHold {
    this.group(groupId);
    return this.held(caller, groupId);
  }

  /** The caller's hold on the group; a group not open by the caller is EINVAL (as a bad group fd). */
  private held(caller: Caller, groupId: number): GroupHold {
    const hold = this.holds.get(groupId);
    if (!hold || (caller.role !== 'admin' && hold.principalId !== caller.id)) fail('EINVAL', `group ${groupId} is not open by you`);
    return hold;
  }
}
