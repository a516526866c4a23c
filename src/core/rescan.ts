import { fail, type Blocker } from './errors.js';
import type { InventoryGuard } from './inventory.js';
import type { Device, GroupRecord, HostWarning, Iommu, Topology } from './model.js';
import type { Store } from './ports.js';
import { assertValidTopology } from './topology.js';

/**
 * Rescan of a real host (POST /v1/topology/rescan): the inventory is brought to what the host shows
 * now, like a merge import that also removes what vanished. Devices that appeared are added,
 * vanished ones go (a hot-unplug: EBUSY while owned), drivers changed outside ioasd are taken over
 * (EBUSY when a DMA-capable kernel driver now sits in an owned group: the kernel would have refused
 * its probe, so the scan is stale or the host is in trouble), and groups get their new warnings.
 * What a host scan cannot know (labels, reset groups, descriptions an admin wrote) is kept.
 */

/** One consequence of a rescan, in SPEC 10's vocabulary. */
export type RescanEffect =
  | { kind: 'group-added'; groupId: number }
  | { kind: 'group-changed'; groupId: number; fields: string[] }
  | { kind: 'group-removed'; groupId: number }
  | { kind: 'device-added'; deviceId: string; groupId: number | null; driver: string }
  | { kind: 'device-changed'; deviceId: string; fields: string[] }
  | { kind: 'driver-changed'; deviceId: string; from: string; to: string; description: string | null }
  | { kind: 'device-removed'; deviceId: string }
  | { kind: 'iommu-changed'; fields: string[] }
  | { kind: 'host-warnings-changed'; codes: string[] };

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
 * Brings the store to `scanned` and answers what changed. Runs inside the caller's transaction;
 * every refusal comes before the first write.
 */
export function applyRescan(store: Store, guard: InventoryGuard, scanned: Topology, actor: string | null): RescanEffect[] {
  const curDevices = store.listDevices();
  const curGroups = store.listGroups();
  const curIommu = store.getIommu();
  const curHost = store.getHostWarnings();
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
  const effects: RescanEffect[] = [];
  for (const g of next.groups) {
    const was = curGroupById.get(g.id);
    if (!was) {
      store.insertGroup(g);
      effects.push({ kind: 'group-added', groupId: g.id });
      continue;
    }
    const fields = changedGroupFields(was, g);
    if (fields.length === 0) continue;
    store.updateGroup(g);
    effects.push({ kind: 'group-changed', groupId: g.id, fields });
  }
  for (const d of parentsFirstOf(added, nextById)) {
    store.insertDevice(d);
    effects.push({ kind: 'device-added', deviceId: d.id, groupId: d.groupId, driver: d.driver });
  }
  for (const { was, now, fields } of kept) {
    if (fields.length === 0 && was.driver === now.driver) continue;
    store.updateDevice(now);
    if (was.driver !== now.driver) effects.push({ kind: 'driver-changed', deviceId: now.id, from: was.driver, to: now.driver, description: now.description });
    if (fields.length > 0) effects.push({ kind: 'device-changed', deviceId: now.id, fields });
  }
  for (const d of childrenFirst(removed, curById)) {
    store.deleteDevice(d.id);
    effects.push({ kind: 'device-removed', deviceId: d.id });
  }
  for (const g of curGroups) {
    if (nextGroupById.has(g.id)) continue;
    store.deleteGroup(g.id);
    effects.push({ kind: 'group-removed', groupId: g.id });
  }
  if (iommuFields.length > 0) {
    store.setIommu(next.iommu);
    effects.push({ kind: 'iommu-changed', fields: iommuFields });
  }
  const host: HostWarning[] = next.hostWarnings ?? [];
  if (JSON.stringify(host) !== JSON.stringify(curHost)) {
    store.setHostWarnings(host);
    effects.push({ kind: 'host-warnings-changed', codes: [...new Set(host.map((w) => w.code))].sort() });
  }
  store.audit({ actor, action: 'topology.rescan', target: 'topology', detail: { effects: effects.length } });
  return effects;
}

