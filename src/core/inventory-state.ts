import { groupView, type GroupView } from './groups.js';
import { summarizeWarnings, type WarningSummary } from './isolation.js';
import type { Device, GroupRecord, HostWarning, Iommu, IsolationWarning, ReservedRegion } from './model.js';
import type { InventoryPort, InventoryReadPort } from './ports.js';
import type { UndoLog } from './tx.js';

/**
 * The inventory in memory: the iommu, groups, devices and host warnings, with the views derived from
 * them (each group's view with viability, blockers and reserved regions; the warning summary). Reads
 * never touch the store. Memory is the primary copy and the store is written through: each write
 * goes to the store first (which may refuse it: a key, a constraint) and then to memory in the same
 * synchronous step of a change, with its inverse in the change's undo log, so a refused, rolled-back
 * or dry-run change leaves memory equal to the database. Derived views are cached and dropped by the
 * writes that affect them (and by their undo), so they are never older than what they derive from.
 * Everything handed out is frozen: a reader cannot change memory behind the store's back.
 */
export class InventoryState implements InventoryReadPort {
  private iommu: Iommu | undefined;
  private host: readonly HostWarning[] = NONE;
  private readonly groups = new Map<number, GroupRecord>();
  private readonly devices = new Map<string, Device>();
  /** Devices by group id and by parent id (the indexes the rules and views read). */
  private readonly members = new Map<number, Map<string, Device>>();
  private readonly children = new Map<string, Map<string, Device>>();

  // Derived, dropped by the writes that change what they derive from.
  private readonly views = new Map<number, GroupView>();
  private readonly memberLists = new Map<number, readonly Device[]>();
  private readonly childLists = new Map<string, readonly Device[]>();
  private groupList: readonly GroupRecord[] | null = null;
  private deviceList: readonly Device[] | null = null;
  private viewList: readonly GroupView[] | null = null;
  private summary: WarningSummary | null = null;
  private changeCount = 0;

  constructor(private readonly port: InventoryPort) {}

  /** Start-up (and after the database changed under it, as a restore does): memory derived afresh from the store. */
  load(): void {
    this.iommu = undefined;
    this.host = NONE;
    this.groups.clear();
    this.devices.clear();
    this.members.clear();
    this.children.clear();
    this.dropAllViews();
    if (this.port.hasTopology()) this.iommu = frozenIommu(this.port.getIommu());
    this.host = frozenHostWarnings(this.port.getHostWarnings());
    for (const g of this.port.listGroups()) this.putGroup(frozenGroup(g));
    for (const d of this.port.listDevices()) this.putDevice(frozenDevice(d));
  }

  /** Counts every change to memory (undo included): a reader caching something derived from it compares this. */
  get version(): number {
    return this.changeCount;
  }

  // ---- reads ------------------------------------------------------------------------------------

  /** False until a topology was first loaded into this database. */
  hasTopology(): boolean {
    return this.iommu !== undefined;
  }

  getIommu(): Iommu {
    if (this.iommu === undefined) throw new Error('no iommu in the database: the topology was never loaded');
    return this.iommu;
  }

  getHostWarnings(): readonly HostWarning[] {
    return this.host;
  }

  getGroup(id: number): GroupRecord | undefined {
    return this.groups.get(id);
  }

  /** Group records by id. */
  groupsById(): ReadonlyMap<number, GroupRecord> {
    return this.groups;
  }

  /** Every group, by id. */
  listGroups(): readonly GroupRecord[] {
    return (this.groupList ??= Object.freeze([...this.groups.values()].sort((a, b) => a.id - b.id)));
  }

  getDevice(id: string): Device | undefined {
    return this.devices.get(id);
  }

  /** Every device, by id. */
  listDevices(): readonly Device[] {
    return (this.deviceList ??= sortedById(this.devices.values()));
  }

  devicesInGroup(groupId: number): readonly Device[] {
    let list = this.memberLists.get(groupId);
    if (!list) {
      list = sortedById(this.members.get(groupId)?.values() ?? []);
      this.memberLists.set(groupId, list);
    }
    return list;
  }

  childrenOf(deviceId: string): readonly Device[] {
    let list = this.childLists.get(deviceId);
    if (!list) {
      list = sortedById(this.children.get(deviceId)?.values() ?? []);
      this.childLists.set(deviceId, list);
    }
    return list;
  }

  /** A group's view (viability, blockers, reserved regions), derived once and kept until its group, a member or the iommu changes. */
  groupView(id: number): GroupView | undefined {
    let view = this.views.get(id);
    if (view) return view;
    const group = this.groups.get(id);
    if (!group) return undefined;
    view = deepFreeze(groupView(group, this.devicesInGroup(id), this.iommu?.reservedRegions ?? []));
    this.views.set(id, view);
    return view;
  }

  /** Every group's view, by group id. */
  groupViews(): readonly GroupView[] {
    return (this.viewList ??= Object.freeze(this.listGroups().map((g) => this.groupView(g.id)!)));
  }

  /** Every warning of the inventory, counted, with the host's own findings (GET /v1/system). */
  warningSummary(): WarningSummary {
    return (this.summary ??= deepFreeze(summarizeWarnings(this.listGroups(), this.listDevices(), this.host)));
  }

  counts(): { groups: number; devices: number } {
    return { groups: this.groups.size, devices: this.devices.size };
  }

  // ---- writes: the store first, then memory, the inverse in the undo log --------------------------

  setIommu(iommu: Iommu, undo: UndoLog): void {
    this.port.setIommu(iommu);
    const previous = this.iommu;
    this.assignIommu(frozenIommu(iommu));
    undo.push(() => this.assignIommu(previous));
  }

  setHostWarnings(warnings: readonly HostWarning[], undo: UndoLog): void {
    this.port.setHostWarnings(warnings);
    const previous = this.host;
    this.assignHost(frozenHostWarnings(warnings));
    undo.push(() => this.assignHost(previous));
  }

  insertGroup(group: GroupRecord, undo: UndoLog): void {
    this.port.insertGroup(group);
    this.putGroup(frozenGroup(group));
    undo.push(() => this.removeGroup(group.id));
  }

  /** Replaces a group's kind, domain type and warnings (a rescan). */
  updateGroup(group: GroupRecord, undo: UndoLog): void {
    const previous = this.groups.get(group.id);
    this.port.updateGroup(group);
    if (!previous) return; // the store changed no row either
    this.putGroup(frozenGroup(group));
    undo.push(() => this.putGroup(previous));
  }

  deleteGroup(id: number, undo: UndoLog): void {
    const previous = this.groups.get(id);
    this.port.deleteGroup(id);
    if (!previous) return;
    this.removeGroup(id);
    undo.push(() => this.putGroup(previous));
  }

  insertDevice(device: Device, undo: UndoLog): void {
    this.port.insertDevice(device);
    this.putDevice(frozenDevice(device));
    undo.push(() => this.removeDevice(device.id));
  }

  /** Replaces every field of an existing device (a rescan). */
  updateDevice(device: Device, undo: UndoLog): void {
    const previous = this.devices.get(device.id);
    this.port.updateDevice(device);
    if (!previous) return;
    this.removeDevice(device.id);
    this.putDevice(frozenDevice(device));
    undo.push(() => {
      this.removeDevice(device.id);
      this.putDevice(previous);
    });
  }

  deleteDevice(id: string, undo: UndoLog): void {
    const previous = this.devices.get(id);
    this.port.deleteDevice(id);
    if (!previous) return;
    this.removeDevice(id);
    undo.push(() => this.putDevice(previous));
  }

  setDriver(id: string, driver: string, undo: UndoLog): void {
    const previous = this.devices.get(id);
    this.port.setDriver(id, driver);
    if (!previous) return;
    this.removeDevice(id);
    this.putDevice(Object.freeze({ ...previous, driver }));
    undo.push(() => {
      this.removeDevice(id);
      this.putDevice(previous);
    });
  }

  /** Drops every group and device (an import in replace mode). */
  clear(undo: UndoLog): void {
    this.port.clearInventory();
    const groups = [...this.groups.values()];
    const devices = [...this.devices.values()];
    for (const d of devices) this.removeDevice(d.id);
    for (const g of groups) this.removeGroup(g.id);
    undo.push(() => {
      for (const g of groups) this.putGroup(g);
      for (const d of devices) this.putDevice(d);
    });
  }

  // ---- memory alone (also what the undo steps call) -----------------------------------------------

  private assignIommu(iommu: Iommu | undefined): void {
    this.iommu = iommu;
    this.dropAllViews(); // its reserved regions are in every group's view
  }

  private assignHost(host: readonly HostWarning[]): void {
    this.host = host;
    this.changed();
  }

  private putGroup(group: GroupRecord): void {
    this.groups.set(group.id, group);
    this.groupList = null;
    this.dropGroupView(group.id);
  }

  private removeGroup(id: number): void {
    this.groups.delete(id);
    this.groupList = null;
    this.dropGroupView(id);
  }

  private putDevice(device: Device): void {
    this.devices.set(device.id, device);
    if (device.groupId !== null) indexAdd(this.members, device.groupId, device);
    if (device.parentId !== null) indexAdd(this.children, device.parentId, device);
    this.deviceMoved(device);
  }

  private removeDevice(id: string): void {
    const device = this.devices.get(id);
    if (!device) return;
    this.devices.delete(id);
    if (device.groupId !== null) indexRemove(this.members, device.groupId, id);
    if (device.parentId !== null) indexRemove(this.children, device.parentId, id);
    this.deviceMoved(device);
  }

  private deviceMoved(device: Device): void {
    this.deviceList = null;
    if (device.parentId !== null) this.childLists.delete(device.parentId);
    if (device.groupId !== null) {
      this.memberLists.delete(device.groupId);
      this.dropGroupView(device.groupId);
    } else this.changed();
  }

  private dropGroupView(id: number): void {
    this.views.delete(id);
    this.changed();
  }

  private dropAllViews(): void {
    this.views.clear();
    this.memberLists.clear();
    this.childLists.clear();
    this.groupList = null;
    this.deviceList = null;
    this.changed();
  }

  /** Anything changed: the lists of views and the summary go (each group's own view stays unless it was dropped). */
  private changed(): void {
    this.viewList = null;
    this.summary = null;
    this.changeCount++;
  }
}

const NONE: readonly HostWarning[] = Object.freeze([]);

function indexAdd<K>(index: Map<K, Map<string, Device>>, key: K, device: Device): void {
  const set = index.get(key);
  if (set) set.set(device.id, device);
  else index.set(key, new Map([[device.id, device]]));
}

function indexRemove<K>(index: Map<K, Map<string, Device>>, key: K, id: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(id);
  if (set.size === 0) index.delete(key);
}

/** By id, as the store's ORDER BY id gives them. */
function sortedById(devices: Iterable<Device>): readonly Device[] {
  return Object.freeze([...devices].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// What the store's codecs keep of each record (src/store: the `devices` and `groups` tables and the
// `settings` rows), so memory holds exactly what a restart would read back.

function region(r: ReservedRegion): ReservedRegion {
  return { start: r.start, last: r.last, type: r.type };
}

/** A JSON column's value as it reads back: undefined members dropped. */
function jsonValue<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function frozenIommu(i: Iommu): Iommu {
  return deepFreeze({
    pageSizes: [...i.pageSizes],
    aperture: { start: i.aperture.start, last: i.aperture.last },
    reservedRegions: i.reservedRegions.map(region),
    pasidBits: i.pasidBits,
    features: jsonValue(i.features),
  });
}

function frozenHostWarnings(warnings: readonly HostWarning[]): readonly HostWarning[] {
  return deepFreeze(warnings.map((w) => ({ code: w.code, detail: w.detail })));
}

function frozenGroup(g: GroupRecord): GroupRecord {
  return deepFreeze({ id: g.id, kind: g.kind, type: g.type ?? null, warnings: jsonValue<IsolationWarning[]>(g.warnings ?? []) });
}

function frozenDevice(d: Device): Device {
  return deepFreeze({
    id: d.id,
    kind: d.kind,
    groupId: d.groupId,
    parentId: d.parentId,
    driver: d.driver,
    label: d.label,
    pasidCapable: d.pasidCapable,
    resetGroup: d.resetGroup,
    vendor: d.vendor,
    device: d.device,
    class: d.class,
    description: d.description,
    reservedRegions: d.reservedRegions.map(region),
  });
}
