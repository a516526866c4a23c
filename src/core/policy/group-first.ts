import { visibleTo, type Caller } from '../caller.js';
import { fail } from '../errors.js';
import type { Device, DeviceOpen, Domain, GroupHold, GroupRecord } from '../model.js';
import { assignableGroup } from '../isolation.js';
import { assertClearance, assertNoKernelDma } from '../ownership.js';
import type { UndoLog } from '../tx.js';
import { accessDomain, dropDomain, iommuDomain, putDomain } from './domains.js';
import { groupEvent, type OwnershipPolicy, type PolicyDeps } from './types.js';

const CONTAINER = 'container';

/**
 * group-first: legacy VFIO (drivers/vfio/group.c, container.c). A context opens a whole group (a
 * group-hold object), puts it in a container (an IOAS, which the hold then uses: that is when the
 * group's DMA ownership is claimed), then opens devices of it (device-open objects, users of the
 * hold). Mappings follow the type1v2 rules through the container's IOMMU model.
 */
export class GroupFirst implements OwnershipPolicy {
  readonly name = 'group-first' as const;

  constructor(private readonly deps: PolicyDeps) {
    deps.objects.define('group-hold', (hold, undo) => {
      if (hold.ioasId !== null) this.leaveContainer(hold, undo);
      deps.groupHolds.deleteGroupHold(hold.groupId);
    });
    deps.objects.define('device-open', (open, undo) => {
      deps.objects.unuse(open, deps.objects.find('group-hold', open.groupId)!, undo);
      deps.groupHolds.deleteDeviceOpen(open.deviceId);
    });
  }

  /** POST /groups/{id}/open: open by anyone already is EBUSY; clearance for every label is EACCES. */
  openGroup(caller: Caller, groupId: number, contextId: string): GroupHold {
    const { inventory, objects, state, tx, groupHolds } = this.deps;
    const group = this.group(groupId);
    const ctx = objects.get(caller, 'context', contextId);
    if (objects.find('group-hold', groupId)) {
      // VFIO allows one open of a group at a time, even by the same process.
      state.assertNoOtherHolder(groupId, contextId, caller, 'EBUSY');
      fail('EBUSY', `group ${groupId} is already open in this context`, { blockers: [{ kind: 'group', id: String(groupId), reason: 'already open', owner: contextId }] });
    }
    // A device bound under device-first would hold the group too (the policies never mix, but the
    // rule is the same one).
    state.assertNoOtherHolder(groupId, contextId, caller, 'EBUSY');
    const members = inventory.devicesInGroup(group.id);
    assertClearance(this.deps.clearancesOf(ctx.principalId), groupId, members);
    // Opening makes the context the group's owner: an mdev's parent and its mdevs never share one.
    for (const d of members) state.assertParentUnowned(d, caller, 'EBUSY');
    return tx.run(
      (undo) => {
        const hold: GroupHold = { type: 'group-hold', id: groupId, groupId, contextId, principalId: ctx.principalId, users: new Set(), ioasId: null };
        groupHolds.putGroupHold(groupId, contextId, null);
        objects.add(hold, undo);
        return hold;
      },
      { actor: caller.id, action: 'group.open', target: `group:${groupId}` },
    );
  }

  /** POST /groups/{id}/close: releases the group's devices, container membership and ownership. */
  closeGroup(caller: Caller, groupId: number): void {
    const hold = this.mine(caller, groupId);
    this.deps.tx.run((undo) => this.deps.objects.destroyWithUsers(hold, undo), { actor: caller.id, action: 'group.close', target: `group:${groupId}` });
  }

  /**
   * PUT /groups/{id}/container: joins an IOAS and claims DMA ownership of the whole group. The first
   * group fixes the container's IOMMU model; a later one must agree with the existing mappings.
   */
  setContainer(caller: Caller, groupId: number, ioasId: number): GroupHold {
    const { inventory, objects, state, tx, groupHolds } = this.deps;
    const hold = this.mine(caller, groupId);
    const space = objects.get(caller, 'ioas', ioasId);
    if (space.contextId !== hold.contextId) fail('EINVAL', `ioas ${ioasId} belongs to another context than group ${groupId}`);
    if (hold.ioasId !== null) fail('EINVAL', `group ${groupId} is already in container ${hold.ioasId}`);
    const group = this.group(groupId);
    const members = inventory.devicesInGroup(groupId);
    assertNoKernelDma(groupId, members, 'EPERM');
    for (const d of members) state.assertParentKeepsKernelDriver(d, caller, 'EPERM');
    return tx.run(
      (undo) => {
        // EINVAL, as VFIO_GROUP_SET_CONTAINER does when the new group's IOMMU cannot take the mappings.
        putDomain(space, this.model(space.id, group), undo, 'EINVAL');
        hold.ioasId = ioasId;
        undo.push(() => (hold.ioasId = null));
        groupHolds.putGroupHold(groupId, hold.contextId, ioasId);
        objects.use(hold, space, undo);
        this.deps.tx.emit(groupEvent('group.claimed', hold, members.map((d) => d.id)));
        return hold;
      },
      { actor: caller.id, action: 'group.container', target: `group:${groupId}` },
    );
  }

  /** DELETE /groups/{id}/container: not in one is EINVAL; open devices are EBUSY. */
  unsetContainer(caller: Caller, groupId: number): GroupHold {
    const hold = this.mine(caller, groupId);
    if (hold.ioasId === null) fail('EINVAL', `group ${groupId} is not in a container`);
    if (hold.users.size > 0) fail('EBUSY', `group ${groupId} has open devices`, { blockers: this.deps.objects.blockersOf(hold) });
    return this.deps.tx.run(
      (undo) => {
        this.leaveContainer(hold, undo);
        return hold;
      },
      { actor: caller.id, action: 'group.container-leave', target: `group:${groupId}` },
    );
  }

  /** POST /groups/{id}/devices/{deviceId}/open: needs the group open by the caller and in a container. */
  openDevice(caller: Caller, groupId: number, deviceId: string): { deviceId: string; opens: number } {
    const { inventory, objects, tx, groupHolds } = this.deps;
    const hold = this.held(caller, groupId);
    if (hold.ioasId === null) fail('EINVAL', `group ${groupId} is not in a container: set one before opening devices`);
    const device = inventory.getDevice(deviceId);
    if (device) assignableGroup(device);
    if (!device || device.groupId !== groupId) fail('ENODEV', `device ${deviceId} is not in group ${groupId}`);
    return tx.run(
      (undo) => {
        let open = objects.find('device-open', deviceId);
        if (open) {
          open.count++;
          const o = open;
          undo.push(() => o.count--);
        } else {
          open = { type: 'device-open', id: deviceId, deviceId, groupId, contextId: hold.contextId, principalId: hold.principalId, users: new Set(), count: 1 };
          objects.add(open, undo);
          objects.use(open, hold, undo);
        }
        groupHolds.putDeviceOpen(deviceId, groupId, open.count);
        return { deviceId, opens: open.count };
      },
      { actor: caller.id, action: 'device.open', target: `device:${deviceId}` },
    );
  }

  /** POST /groups/{id}/devices/{deviceId}/close: one open fewer; not open is EINVAL. */
  closeDevice(caller: Caller, groupId: number, deviceId: string): { deviceId: string; opens: number } {
    const { objects, tx, groupHolds } = this.deps;
    this.held(caller, groupId);
    const open = objects.find('device-open', deviceId);
    if (!open || open.groupId !== groupId) fail('EINVAL', `device ${deviceId} is not open`);
    return tx.run(
      (undo) => {
        if (open.count === 1) {
          objects.destroy(open, undo);
          return { deviceId, opens: 0 };
        }
        open.count--;
        undo.push(() => open.count++);
        groupHolds.putDeviceOpen(deviceId, groupId, open.count);
        return { deviceId, opens: open.count };
      },
      { actor: caller.id, action: 'device.close', target: `device:${deviceId}` },
    );
  }

  /** Open devices of a hold and how often each is open. */
  openDevicesOf(hold: GroupHold): Record<string, number> {
    const out: Record<string, number> = {};
    for (const u of hold.users) if (u.type === 'device-open') out[(u as DeviceOpen).deviceId] = (u as DeviceOpen).count;
    return out;
  }

  /** Start-up: holds, device opens and container models back as they were. */
  restore(): void {
    const { objects, groupHolds, inventory } = this.deps;
    for (const r of groupHolds.listGroupHolds()) {
      const ctx = objects.find('context', r.contextId);
      if (!ctx) continue;
      objects.add({ type: 'group-hold', id: r.groupId, groupId: r.groupId, contextId: r.contextId, principalId: ctx.principalId, users: new Set(), ioasId: r.ioasId });
    }
    for (const o of groupHolds.listDeviceOpens()) {
      const hold = objects.find('group-hold', o.groupId);
      if (!hold) continue;
      const open: DeviceOpen = { type: 'device-open', id: o.deviceId, deviceId: o.deviceId, groupId: o.groupId, contextId: hold.contextId, principalId: hold.principalId, users: new Set(), count: o.count };
      objects.add(open);
      objects.use(open, hold);
    }
    for (const hold of objects.all('group-hold').values()) {
      if (hold.ioasId === null) continue;
      const space = objects.find('ioas', hold.ioasId);
      const group = inventory.getGroup(hold.groupId);
      if (!space || !group) continue;
      objects.use(hold, space);
      space.restoreDomain(this.model(space.id, group));
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  /** The group leaves its container; when the last group goes, the IOMMU model and every mapping go (type1). */
  private leaveContainer(hold: GroupHold, undo: UndoLog): void {
    const { objects, groupHolds, inventory, mappings } = this.deps;
    const ioasId = hold.ioasId!;
    const space = objects.find('ioas', ioasId)!;
    hold.ioasId = null;
    undo.push(() => (hold.ioasId = ioasId));
    groupHolds.putGroupHold(hold.groupId, hold.contextId, null);
    objects.unuse(hold, space, undo);
    this.deps.tx.emit(groupEvent('group.released', hold));
    const rest = [...objects.all('group-hold').values()].filter((h) => h.ioasId === ioasId);
    if (rest.length === 0) {
      mappings.removeAll(space, undo);
      dropDomain(space, CONTAINER, undo);
    } else {
      putDomain(space, this.model(ioasId, inventory.getGroup(rest[0]!.groupId)!), undo, 'EINVAL');
    }
  }

  /**
   * The container's IOMMU model: the iommu's page sizes, aperture and reserved regions plus every
   * member device's own reserved regions. Containers of virtual groups only get page granularity.
   */
  private model(ioasId: number, joining: GroupRecord): Domain {
    const { inventory, objects } = this.deps;
    const groups = new Set([...objects.all('group-hold').values()].filter((h) => h.ioasId === ioasId).map((h) => h.groupId));
    groups.add(joining.id);
    const hardware = [...groups].map((g) => inventory.getGroup(g)).filter((g): g is GroupRecord => g?.kind === 'iommu');
    if (hardware.length === 0) return accessDomain(CONTAINER);
    const devices: Device[] = hardware.flatMap((g) => inventory.devicesInGroup(g.id));
    return iommuDomain(CONTAINER, inventory.getIommu(), devices);
  }

  private group(groupId: number): GroupRecord {
    const group = this.deps.inventory.getGroup(groupId);
    if (!group) fail('ENOENT', `group ${groupId} does not exist`);
    return group;
  }

  /** The caller's hold on an existing group (ENOENT when there is no such group). */
  private mine(caller: Caller, groupId: number): GroupHold {
    this.group(groupId);
    return this.held(caller, groupId);
  }

  /** The caller's hold on the group; a group not open by the caller is EINVAL (as a bad group fd). */
  private held(caller: Caller, groupId: number): GroupHold {
    const hold = this.deps.objects.find('group-hold', groupId);
    if (!hold || !visibleTo(caller, hold)) fail('EINVAL', `group ${groupId} is not open by you`);
    return hold;
  }
}
