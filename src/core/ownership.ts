import { ownerAs, type Caller, type Owner } from './caller.js';
import { isKernelDma, isVirtualKind } from './devices.js';
import { fail, type Blocker, type Errno } from './errors.js';
import { kernelDriverBlockers } from './groups.js';
import type { Binding, Device, GroupHold, Hwpt } from './model.js';
import type { ObjectTable } from './objects.js';
import type { InventoryReadPort } from './ports.js';

/**
 * The isolation rules of SPEC 1, each in exactly one place, shared by both policies:
 * - one DMA owner per group ({@link OwnershipState.assertNoOtherHolder});
 * - no user owner beside a DMA-capable kernel driver ({@link assertNoKernelDma}, and the admin
 *   guards {@link OwnershipState.assertDriverChange} / {@link OwnershipState.assertUnplug});
 * - clearance for the label of every device in the group ({@link assertClearance});
 * - a virtual device's parent stays with its kernel driver ({@link OwnershipState.assertParentKeepsKernelDriver}).
 * The policies decide *when* each applies and with which errno (the kernel's), not *what* it says.
 */

/** EACCES unless the principal is cleared for the label of every device in the group. */
export function assertClearance(clearances: readonly string[], groupId: number, members: readonly Device[]): void {
  const missing = members.filter((d) => d.label !== null && !clearances.includes(d.label));
  if (missing.length === 0) return;
  const labels = [...new Set(missing.map((d) => d.label!))].sort();
  fail('EACCES', `not cleared for label${labels.length > 1 ? 's' : ''} ${labels.join(', ')} of group ${groupId}: a device in a group is reachable from every other by peer-to-peer DMA`, {
    blockers: missing.map((d) => ({ kind: 'device', id: d.id, reason: `label ${d.label} needs clearance` })),
  });
}

/** Refuses with `errno` when a device of the group is on a DMA-capable kernel driver. */
export function assertNoKernelDma(groupId: number, members: readonly Device[], errno: Errno): void {
  const blockers = kernelDriverBlockers(members);
  if (blockers.length > 0) {
    fail(errno, `group ${groupId} is not viable: ${blockers.map((b) => `${b.id} is ${b.reason}`).join('; ')}`, { blockers });
  }
}

/**
 * Ownership state of both policies, read from the object table (only one policy's objects ever exist:
 * the policy cannot change while anything is held), with the queries both policies and the admin
 * guards share.
 */
export class OwnershipState {
  constructor(
    private readonly objects: ObjectTable,
    private readonly inventory: InventoryReadPort,
  ) {}

  /** group-first holds by group id. */
  get groupHolds(): ReadonlyMap<number, GroupHold> {
    return this.objects.all('group-hold');
  }

  /** device-first bindings by device id. */
  get bindings(): ReadonlyMap<string, Binding> {
    return this.objects.all('binding');
  }

  get hwpts(): ReadonlyMap<number, Hwpt> {
    return this.objects.all('hwpt');
  }

  /** The context holding a group: its group-first opener, or the context of its bound devices. */
  holderOf(groupId: number | null): Owner | null {
    if (groupId === null) return null; // a device without an IOMMU group is never held
    const hold = this.groupHolds.get(groupId);
    if (hold) return hold;
    for (const b of this.bindings.values()) if (b.groupId === groupId) return b;
    return null;
  }

  /** Whether a user has claimed the group's DMA ownership (in a container, or a device bound). */
  dmaClaimed(groupId: number): boolean {
    const hold = this.groupHolds.get(groupId);
    if (hold) return hold.ioasId !== null;
    for (const b of this.bindings.values()) if (b.groupId === groupId) return true;
    return false;
  }

  /** Everything held, as blockers (for a policy switch or a topology import). */
  holdings(viewer: Caller | null): Blocker[] {
    const out: Blocker[] = [];
    for (const h of this.groupHolds.values()) out.push({ kind: 'group', id: String(h.groupId), reason: 'open (group-first)', owner: ownerAs(h, viewer) });
    for (const b of this.bindings.values()) out.push({ kind: 'device', id: b.deviceId, reason: 'bound (device-first)', owner: ownerAs(b, viewer) });
    return out;
  }

  /** One DMA owner per group: refuses with `errno` when another context holds the group. */
  assertNoOtherHolder(groupId: number, contextId: string, viewer: Caller, errno: Errno): void {
    const holder = this.holderOf(groupId);
    if (holder && holder.contextId !== contextId) {
      const owner = ownerAs(holder, viewer);
      fail(errno, `group ${groupId} is owned by ${owner === 'other' ? 'another principal' : `context ${owner}`}`, {
        blockers: [{ kind: 'group', id: String(groupId), reason: 'owned by another context', owner }],
      });
    }
  }

  /**
   * A virtual device rides on its parent, which must stay with its kernel driver and must not be
   * owned by a user: whoever owned the parent could reach every mdev it carries.
   */
  assertParentKeepsKernelDriver(device: Device, viewer: Caller, errno: Errno): void {
    const parent = this.assertParentUnowned(device, viewer, errno);
    if (parent && !isKernelDma(parent)) {
      fail(errno, `parent ${parent.id} of ${device.id} is on ${parent.driver}, not the kernel driver that provides its virtual devices`, {
        blockers: [{ kind: 'driver', id: parent.id, reason: `parent driver is ${parent.driver}` }],
      });
    }
  }

  /**
   * The ownership half of the parent rule, checked whenever a user takes a group: a virtual device's
   * parent must not be user-owned, and a group parenting virtual devices in use cannot be taken.
   * Returns the parent of a virtual device, if any.
   */
  assertParentUnowned(device: Device, viewer: Caller, errno: Errno): Device | undefined {
    const children = this.heldChildren(device.id);
    if (children.length > 0) {
      fail(errno, `${device.id} parents virtual devices in use: it stays with its kernel driver`, {
        blockers: children.map((c) => ({ kind: 'device', id: c.id, reason: 'virtual device in use', owner: ownerAs(this.holderOf(c.groupId)!, viewer) })),
      });
    }
    if (!isVirtualKind(device.kind) || device.parentId === null) return undefined;
    const parent = this.inventory.getDevice(device.parentId);
    if (!parent) fail('ENODEV', `parent ${device.parentId} of ${device.id} is gone`);
    const holder = this.holderOf(parent.groupId);
    if (holder) {
      fail(errno, `parent ${parent.id} of ${device.id} is owned by a user`, {
        blockers: [{ kind: 'device', id: parent.id, reason: 'parent owned by a user', owner: ownerAs(holder, viewer) }],
      });
    }
    return parent;
  }

  /** Virtual devices in held groups whose parent is this device. */
  private heldChildren(deviceId: string): Device[] {
    return this.inventory.childrenOf(deviceId).filter((c) => isVirtualKind(c.kind) && this.holderOf(c.groupId) !== null);
  }

  /**
   * Admin rebinds a driver: refused EBUSY when it would put a DMA-capable kernel driver into a
   * user-owned group (as the kernel's probe fails), or move a parent off the driver its owned
   * virtual devices depend on.
   */
  assertDriverChange(device: Device, driver: string): void {
    // SPEC 3: while the group has a user owner at all (group-first: open, even before it joins a
    // container), no device of it may get a DMA-capable kernel driver.
    const holder = this.holderOf(device.groupId);
    if (holder && isKernelDma({ kind: device.kind, driver })) {
      fail('EBUSY', `group ${device.groupId} is owned by context ${holder.contextId}: a DMA-capable kernel driver cannot join it`, {
        blockers: [{ kind: 'group', id: String(device.groupId), reason: 'owned by a user', owner: holder.contextId }],
      });
    }
    const children = this.heldChildren(device.id);
    if (children.length > 0) {
      fail('EBUSY', `${device.id} parents virtual devices in use: its driver must stay`, {
        blockers: children.map((c) => ({ kind: 'device', id: c.id, reason: 'virtual device in use', owner: this.holderOf(c.groupId)!.contextId })),
      });
    }
  }

  /** Admin hot-unplug (or hot-plug into a group): refused EBUSY while any affected group is held. */
  assertUnplug(devices: readonly Device[]): void {
    const blockers: Blocker[] = [];
    for (const d of devices) {
      const holder = this.holderOf(d.groupId);
      if (holder) blockers.push({ kind: 'device', id: d.id, reason: `group ${d.groupId} is owned`, owner: holder.contextId });
    }
    if (blockers.length > 0) fail('EBUSY', `owned devices cannot be unplugged: ${blockers.map((b) => b.id).join(', ')}`, { blockers });
  }

  /** A device appearing in a user-owned group must not bring a DMA-capable kernel driver. */
  assertPlug(device: Device): void {
    const holder = this.holderOf(device.groupId);
    if (holder && isKernelDma(device)) {
      fail('EBUSY', `group ${device.groupId} is owned: a device on kernel driver ${device.driver} cannot join it`, {
        blockers: [{ kind: 'group', id: String(device.groupId), reason: 'owned by a user', owner: holder.contextId }],
      });
    }
  }

  /** Anything held refuses a whole-inventory import. */
  assertNothingHeld(what: string): void {
    const blockers = this.holdings(null);
    if (blockers.length > 0) fail('EBUSY', `${what} is refused while devices are owned`, { blockers });
  }
}
