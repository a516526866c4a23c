import { isKernelDma } from './devices.js';
import { fail } from './errors.js';
import type { CoreEvent } from './events.js';
import { groupKindFor } from './devices.js';
import type { GroupView } from './groups.js';
import type { InventoryState } from './inventory-state.js';
import type { WarningSummary } from './isolation.js';
import type { Device, DeviceKind, GroupRecord, Iommu, Topology } from './model.js';
import type { Tx } from './tx.js';
import { assertValidTopology, mergeTopology } from './topology.js';

export interface DeviceFilter {
  group?: number;
  driver?: string;
  kind?: DeviceKind;
  /** true: only devices whose group has no user owner; false: only owned ones. */
  free?: boolean;
}

export interface ImportRequest {
  topology: Topology;
  /** Per-group device lists given in the document, checked against the devices' groupId. */
  groupMembers: ReadonlyMap<number, readonly string[]>;
  mode: 'replace' | 'merge';
}

/** What the inventory asks of the ownership state before an admin change (see ownership.ts). */
export interface InventoryGuard {
  holderOf(groupId: number | null): { contextId: string; principalId: string } | null;
  assertDriverChange(device: Device, driver: string): void;
  assertUnplug(devices: readonly Device[]): void;
  assertPlug(device: Device): void;
  assertNothingHeld(what: string): void;
}

const NO_OWNERSHIP: InventoryGuard = {
  holderOf: () => null,
  assertDriverChange: () => {},
  assertUnplug: () => {},
  assertPlug: () => {},
  assertNothingHeld: () => {},
};

/**
 * The device inventory: groups, devices and the iommu's capabilities. They live in memory
 * (inventory-state.ts), written through to the store by the same step of a change; group viability
 * is derived rather than stored, and its cached view is dropped by any change to the drivers it is
 * derived from, so it can never disagree with them.
 */
export class Inventory {
  private guard: InventoryGuard = NO_OWNERSHIP;

  constructor(
    private readonly state: InventoryState,
    private readonly tx: Tx,
  ) {}

  /** Connects the ownership state, which exists only once the allocator is up. */
  guardWith(guard: InventoryGuard): void {
    this.guard = guard;
  }

  topology(): Topology {
    const { state } = this;
    return { iommu: state.getIommu(), groups: [...state.listGroups()], devices: [...state.listDevices()], hostWarnings: [...state.getHostWarnings()] };
  }

  /** The iommu's capabilities. */
  iommu(): Iommu {
    return this.state.getIommu();
  }

  /** False until a topology was first loaded into this database. */
  hasTopology(): boolean {
    return this.state.hasTopology();
  }

  /** Imports a topology all or nothing; every problem of the document is listed in one refusal. */
  import(req: ImportRequest, actor: string | null): Topology {
    return this.tx.run(
      (undo) => {
        const { state } = this;
        this.guard.assertNothingHeld('a topology import');
        const next = req.mode === 'merge' ? mergeTopology(this.topology(), req.topology) : req.topology;
        assertValidTopology(next, req.groupMembers);
        state.clear(undo);
        state.setIommu(next.iommu, undo);
        for (const g of next.groups) state.insertGroup(g, undo);
        // Parents first, so the parent foreign key holds at every insert.
        for (const d of parentsFirst(next.devices)) state.insertDevice(d, undo);
        // Host findings describe the host the document came from: a replace without them clears them.
        state.setHostWarnings(req.topology.hostWarnings ?? (req.mode === 'merge' ? state.getHostWarnings() : []), undo);
        this.tx.emit(inventoryEvent('topology.imported', { kind: 'topology', id: 'topology' }, { mode: req.mode, groups: next.groups.length, devices: next.devices.length }));
        return this.topology();
      },
      { actor, action: 'topology.import', target: 'topology', detail: (t: Topology) => ({ mode: req.mode, groups: t.groups.length, devices: t.devices.length }) },
    );
  }

  /** The group record of a device (its warnings go with it), if it has one. */
  groupOf(device: Device): GroupRecord | undefined {
    return device.groupId === null ? undefined : this.state.getGroup(device.groupId);
  }

  /** Group records by id, for listing many devices with their warnings. */
  groupRecords(): ReadonlyMap<number, GroupRecord> {
    return this.state.groupsById();
  }

  /** Every warning of the inventory, counted, with the host's own findings (GET /v1/system); kept until the inventory changes. */
  warningSummary(): WarningSummary {
    return this.state.warningSummary();
  }

  /** Every group's view, by id (frozen: derived once, kept until a change affects it). */
  listGroups(): readonly GroupView[] {
    return this.state.groupViews();
  }

  getGroup(id: number): GroupView {
    const view = this.state.groupView(id);
    if (!view) fail('ENOENT', `group ${id} does not exist`);
    return view;
  }

  listDevices(filter: DeviceFilter = {}): readonly Device[] {
    const all = this.state.listDevices();
    if (filter.group === undefined && filter.driver === undefined && filter.kind === undefined && filter.free === undefined) return all;
    return all.filter(
      (d) =>
        (filter.group === undefined || d.groupId === filter.group) &&
        (filter.driver === undefined || d.driver === filter.driver) &&
        (filter.kind === undefined || d.kind === filter.kind) &&
        (filter.free === undefined || filter.free === (this.guard.holderOf(d.groupId) === null)),
    );
  }

  getDevice(id: string): Device {
    const device = this.state.getDevice(id);
    if (!device) fail('ENOENT', `device ${id} does not exist`);
    return device;
  }

  /**
   * Hot-plug: a device appears. A group it names that does not exist yet appears with it (a new
   * device usually brings its own group); an existing group must be of the device's kind.
   */
  addDevice(device: Device, actor: string | null): Device {
    return this.tx.run(
      (undo) => {
      const { state } = this;
      if (state.getDevice(device.id)) fail('EEXIST', `device ${device.id} already exists`);
      const group = device.groupId === null ? undefined : state.getGroup(device.groupId);
      const wanted = groupKindFor(device.kind);
      if (device.groupId === null) {
        // A function without an IOMMU group: listed, never assignable (validated below).
      } else if (!group) state.insertGroup({ id: device.groupId, kind: wanted }, undo);
      else if (group.kind !== wanted) {
        fail('EINVAL', `${device.kind} device cannot join ${group.kind} group ${group.id}`, {
          problems: [{ path: 'groupId', message: `group ${group.id} is ${group.kind}` }],
        });
      }
      const next = { ...this.topology(), devices: [...state.listDevices(), device] };
      assertValidTopology(next);
      this.guard.assertPlug(device);
      state.insertDevice(device, undo);
      this.tx.emit(inventoryEvent('device.added', { kind: 'device', id: device.id }, { groupId: device.groupId, driver: device.driver }));
      return device;
      },
      { actor, action: 'device.add', target: `device:${device.id}`, detail: { groupId: device.groupId, driver: device.driver } },
    );
  }

  /**
   * Hot-unplug: the device goes, and with it the devices that hang off it (a PF's VFs, a parent's
   * mdevs), as the kernel removes them. A group left empty goes too. Returns the removed ids.
   */
  deleteDevice(id: string, actor: string | null): string[] {
    return this.tx.run(
      (undo) => {
      const { state } = this;
      const device = this.getDevice(id);
      const removed = this.descendants(device);
      this.guard.assertUnplug(removed);
      const groups = new Set(removed.flatMap((d) => (d.groupId === null ? [] : [d.groupId])));
      // Children first: the parent foreign key must hold at every delete.
      for (const d of [...removed].reverse()) state.deleteDevice(d.id, undo);
      for (const d of removed) this.tx.emit({ ...inventoryEvent('device.removed', { kind: 'device', id: d.id }, { groupId: d.groupId }), gone: true });
      for (const g of groups) if (state.devicesInGroup(g).length === 0) state.deleteGroup(g, undo);
      return removed.map((d) => d.id);
      },
      { actor, action: 'device.delete', target: `device:${id}`, detail: (ids: string[]) => ({ removed: ids }) },
    );
  }

  /** Like driverctl set-override: rebinds the device to another driver. */
  setDriver(id: string, driver: string, actor: string | null): Device {
    const device = this.getDevice(id);
    if (device.driver === driver) return device;
    this.guard.assertDriverChange(device, driver);
    return this.tx.run(
      (undo) => {
        this.state.setDriver(id, driver, undo);
        this.tx.emit(inventoryEvent('device.driver-changed', { kind: 'device', id }, { from: device.driver, to: driver, description: driverChange(device, driver) }));
        return this.state.getDevice(id)!;
      },
      { actor, action: 'device.driver', target: `device:${id}`, detail: { from: device.driver, to: driver } },
    );
  }

  counts(): { groups: number; devices: number } {
    return this.state.counts();
  }

  /** The device and everything below it, parents before children. */
  private descendants(root: Device): Device[] {
    const out = [root];
    for (let i = 0; i < out.length; i++) out.push(...this.state.childrenOf(out[i]!.id));
    return out;
  }
}

/** Orders devices so that each comes after its parent (parents are validated to exist). */
export function parentsFirst(devices: readonly Device[]): Device[] {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const placed = new Set<string>();
  const out: Device[] = [];
  const place = (d: Device, depth: number): void => {
    if (placed.has(d.id) || depth > devices.length) return;
    const parent = d.parentId === null ? undefined : byId.get(d.parentId);
    if (parent) place(parent, depth + 1);
    placed.add(d.id);
    out.push(d);
  };
  for (const d of devices) place(d, 0);
  return out;
}

/** An event of the inventory (scope inventory: everyone sees it). */
export function inventoryEvent(type: string, object: CoreEvent['object'], detail: Record<string, unknown>): CoreEvent {
  return { type, object, scope: 'inventory', principalId: null, contextId: null, detail };
}

/** What a driver change means for the host, in words (a device leaving a kernel driver is the host losing it). */
export function driverChange(device: Device, to: string): string {
  const what = device.description ?? `device ${device.id}`;
  if (isKernelDma(device) && !isKernelDma({ kind: device.kind, driver: to })) return `the host loses ${what}: ${device.driver} lets go of it and it becomes assignable (${to})`;
  if (!isKernelDma(device) && isKernelDma({ kind: device.kind, driver: to })) return `${what} goes back to the host on kernel driver ${to}`;
  return `${what} moves from ${device.driver} to ${to}`;
}
