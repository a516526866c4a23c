import { fail, type Blocker } from './errors.js';
import type { CoreEvent } from './events.js';
import { driverChange, inventoryEvent, type InventoryGuard } from './inventory.js';
import type { Device, GroupRecord, HostWarning, Iommu, Topology } from './model.js';
import type { InventoryState } from './inventory-state.js';
import { assertValidTopology } from './topology.js';
import type { Tx, UndoLog } from './tx.js';

/**
 * Rescan of a real host (POST /v1/topology/rescan): the inventory is brought to what the host shows
 * now, like a merge import that also removes what vanished. Devices that appeared are added,
 * vanished ones go (a hot-unplug: EBUSY while owned), drivers changed outside ioasd are taken over
 * (EBUSY when a DMA-capable kernel driver now sits in an owned group: the kernel would have refused
 * its probe, so the scan is stale or the host is in trouble), and groups get their new warnings.
 * What a host scan cannot know (labels, reset groups, descriptions an admin wrote) is kept.
 */

/**
 * The scanned inventory with what only an admin can know carried over from the current one: labels
 * and reset groups, and the description unless another card now sits at that address.
 */
export function carryOver(current: readonly Device[], scanned: readonly Device[]): Device[] {
  const byId = new Map(current.map((d) => [d.id, d]));
  return scanned.map((d) => {
    const was = byId.get(d.id);
    if (!was) return d;
    const sameCard = was.vendor === d.vendor && was.device === d.device && was.class === d.class;
    return { ...d, label: was.label, resetGroup: was.resetGroup, description: sameCard ? (was.description ?? d.description) : d.description };
  });
}

const DEVICE_FIELDS = ['kind', 'groupId', 'parentId', 'pasidCapable', 'vendor', 'device', 'class', 'reservedRegions'] as const;

function changedDeviceFields(a: Device, b: Device): string[] {
  return DEVICE_FIELDS.filter((f) => JSON.stringify(a[f], big) !== JSON.stringify(b[f], big));
}

function changedGroupFields(a: GroupRecord, b: GroupRecord): string[] {
  const out: string[] = [];
  if (a.kind !== b.kind) out.push('kind');
  if ((a.type ?? null) !== (b.type ?? null)) out.push('type');
  if (JSON.stringify(a.warnings ?? []) !== JSON.stringify(b.warnings ?? [])) out.push('warnings');
  return out;
}

function changedIommuFields(a: Iommu, b: Iommu): string[] {
  return (['pageSizes', 'aperture', 'reservedRegions', 'pasidBits', 'features'] as const).filter(
    (f) => JSON.stringify(a[f], big) !== JSON.stringify(b[f], big),
  );
}

function big(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString(16) : value;
}

/** How far below a root device (one without a parent) a device hangs: VF -> PF is 1. */
function depthIn(all: ReadonlyMap<string, Device>): (d: Device) => number {
  return (d) => {
    let n = 0;
    for (let p = d.parentId; p !== null && n <= all.size; p = all.get(p)?.parentId ?? null) n++;
    return n;
  };
}

/** Children before parents (a PF's VFs and a parent's mdevs go first): the parent key holds at every delete. */
function childrenFirst(devices: readonly Device[], all: ReadonlyMap<string, Device>): Device[] {
  const depth = depthIn(all);
  return [...devices].sort((a, b) => depth(b) - depth(a) || a.id.localeCompare(b.id));
}

/** Parents before children among new devices (a parent that is not new already exists). */
function parentsFirstOf(devices: readonly Device[], all: ReadonlyMap<string, Device>): Device[] {
  const depth = depthIn(all);
  return [...devices].sort((a, b) => depth(a) - depth(b) || a.id.localeCompare(b.id));
}

/**
 * The rescan (POST /v1/topology/rescan, and --sysfs on an existing database). Every change it makes
 * is an inventory event, so GET /v1/events and a dry run's effects (effectsOf) see it: group.added,
 * group.changed, group.removed, device.added, device.changed, device.driver-changed, device.removed,
 * topology.iommu-changed and topology.warnings-changed.
 */
export class HostRescan {
  constructor(
    private readonly state: InventoryState,
    private readonly tx: Tx,
    private readonly guard: InventoryGuard,
  ) {}

  /**
   * Brings the inventory to `scanned` in one change and answers the events it made (nothing to do:
   * none). Every refusal comes before the first write.
   */
  apply(scanned: Topology, actor: string | null): CoreEvent[] {
    return this.tx.run((undo) => this.change(scanned, undo), {
      actor,
      action: 'topology.rescan',
      target: 'topology',
      detail: (events: CoreEvent[]) => ({ effects: events.length }),
    });
  }

  private change(scanned: Topology, undo: UndoLog): CoreEvent[] {
    const { state, guard } = this;
    const curDevices = state.listDevices();
    const curGroups = state.listGroups();
    const curIommu = state.getIommu();
    const curHost = state.getHostWarnings();
    const next: Topology = { ...scanned, devices: carryOver(curDevices, scanned.devices) };
    assertValidTopology(next);

    const curById = new Map(curDevices.map((d) => [d.id, d]));
    const nextById = new Map(next.devices.map((d) => [d.id, d]));
    const curGroupById = new Map(curGroups.map((g) => [g.id, g]));
    const nextGroupById = new Map(next.groups.map((g) => [g.id, g]));

    const removed = curDevices.filter((d) => !nextById.has(d.id));
    const added = next.devices.filter((d) => !curById.has(d.id));
    const kept = next.devices.flatMap((d) => {
      const was = curById.get(d.id);
      return was ? [{ was, now: d, fields: changedDeviceFields(was, d) }] : [];
    });

    // Refusals first, all of them before any write.
    guard.assertUnplug(removed);
    const blockers: Blocker[] = [];
    for (const { was, now, fields } of kept) {
      if (was.driver !== now.driver) guard.assertDriverChange(was, now.driver);
      if (fields.length === 0) continue;
      const holder = guard.holderOf(was.groupId) ?? guard.holderOf(now.groupId);
      if (holder) blockers.push({ kind: 'device', id: was.id, reason: `changed under its owner (${fields.join(', ')})`, owner: holder.contextId });
    }
    if (blockers.length > 0) {
      fail('EBUSY', `owned devices changed on the host: ${blockers.map((b) => b.id).join(', ')}`, { blockers });
    }
    for (const d of added) guard.assertPlug(d);
    for (const g of next.groups) {
      const was = curGroupById.get(g.id);
      if (was && was.kind !== g.kind && guard.holderOf(g.id)) fail('EBUSY', `group ${g.id} is owned and changed kind on the host`);
    }
    const iommuFields = changedIommuFields(curIommu, next.iommu);
    if (iommuFields.length > 0) guard.assertNothingHeld(`a change of the IOMMU's capabilities (${iommuFields.join(', ')})`);

    // Writes in foreign-key order: groups a device moves to, then new devices (parents first), then
    // changed ones (which may now hang off a new device), then what vanished (children first), and
    // last the groups left empty.
    const events: CoreEvent[] = [];
    const emit = (e: CoreEvent): void => {
      events.push(e);
      this.tx.emit(e);
    };
    for (const g of next.groups) {
      const was = curGroupById.get(g.id);
      if (!was) {
        state.insertGroup(g, undo);
        emit(inventoryEvent('group.added', { kind: 'group', id: g.id }, {}));
        continue;
      }
      const fields = changedGroupFields(was, g);
      if (fields.length === 0) continue;
      state.updateGroup(g, undo);
      emit(inventoryEvent('group.changed', { kind: 'group', id: g.id }, { fields }));
    }
    for (const d of parentsFirstOf(added, nextById)) {
      state.insertDevice(d, undo);
      emit(inventoryEvent('device.added', { kind: 'device', id: d.id }, { groupId: d.groupId, driver: d.driver }));
    }
    for (const { was, now, fields } of kept) {
      if (fields.length === 0 && was.driver === now.driver) continue;
      state.updateDevice(now, undo);
      if (was.driver !== now.driver) {
        emit(inventoryEvent('device.driver-changed', { kind: 'device', id: now.id }, { from: was.driver, to: now.driver, description: driverChange(was, now.driver) }));
      }
      if (fields.length > 0) emit(inventoryEvent('device.changed', { kind: 'device', id: now.id }, { fields }));
    }
    for (const d of childrenFirst(removed, curById)) {
      state.deleteDevice(d.id, undo);
      emit({ ...inventoryEvent('device.removed', { kind: 'device', id: d.id }, { groupId: d.groupId }), gone: true });
    }
    for (const g of curGroups) {
      if (nextGroupById.has(g.id)) continue;
      state.deleteGroup(g.id, undo);
      emit({ ...inventoryEvent('group.removed', { kind: 'group', id: g.id }, {}), gone: true });
    }
    if (iommuFields.length > 0) {
      state.setIommu(next.iommu, undo);
      emit(inventoryEvent('topology.iommu-changed', { kind: 'topology', id: 'iommu' }, { fields: iommuFields }));
    }
    const host: HostWarning[] = next.hostWarnings ?? [];
    if (JSON.stringify(host) !== JSON.stringify(curHost)) {
      state.setHostWarnings(host, undo);
      emit(inventoryEvent('topology.warnings-changed', { kind: 'topology', id: 'host' }, { codes: [...new Set(host.map((w) => w.code))].sort() }));
    }
    return events;
  }
}
