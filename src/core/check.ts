import type { Core } from './core.js';
import { isKernelDma } from './devices.js';
import type { CoreObject } from './model.js';
import type { ObjectTypes } from './objects.js';
import type { Store } from './ports.js';

export interface Violation {
  invariant: string;
  object: string;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  checked: Record<string, number>;
  violations: Violation[];
}

/**
 * Every invariant the service promises, re-derived from the database and from memory and compared
 * (SPEC 10): one owner per group, no owner beside a kernel-DMA driver, clearances, no overlapping
 * mappings, pinned-byte and quota totals, references, and memory equal to the database (the objects,
 * and what reads are answered from: the inventory, group views, system summary, principals). `rebuild`
 * makes a fresh core from the store (as a restart would), which is what "the database" means in
 * memory's terms. Reads only. The property tests and the crash test use it too.
 */
export function checkInvariants(live: Core, rebuild: () => Core, store: Store): CheckReport {
  const violations: Violation[] = [];
  const v = (invariant: string, object: string, detail: string) => violations.push({ invariant, object, detail });
  const fromDb = rebuild();
  const devices = store.listDevices();
  const byId = new Map(devices.map((d) => [d.id, d]));
  const groups = store.listGroups();

  // References, in the rows themselves (a restart would silently drop a dangling one).
  const ioasIds = new Set(store.listIoas().map((i) => i.id));
  const contextIds = new Set(store.listContexts().map((c) => c.id));
  const hwpts = store.listHwpts();
  const hwptIds = new Set(hwpts.map((h) => h.id));
  for (const i of store.listIoas()) if (!contextIds.has(i.contextId)) v('references', `ioas ${i.id}`, `its context ${i.contextId} is missing`);
  for (const h of hwpts) {
    if (!ioasIds.has(h.ioasId)) v('references', `hwpt ${h.id}`, `its ioas ${h.ioasId} is missing`);
    if (h.parentId !== null && !hwptIds.has(h.parentId)) v('references', `hwpt ${h.id}`, `its parent hwpt ${h.parentId} is missing`);
  }
  const holds = store.listGroupHolds();
  for (const g of holds) if (g.ioasId !== null && !ioasIds.has(g.ioasId)) v('references', `group ${g.groupId}`, `its container ioas ${g.ioasId} is missing`);
  const bindings = store.listBindings();
  for (const b of bindings) {
    if (!byId.has(b.deviceId)) v('references', `device ${b.deviceId}`, 'bound but not in the inventory');
    if (b.hwptId !== null && !hwptIds.has(b.hwptId)) v('references', `device ${b.deviceId}`, `attached to missing hwpt ${b.hwptId}`);
    if (b.accessIoasId !== null && !ioasIds.has(b.accessIoasId)) v('references', `device ${b.deviceId}`, `attached to missing ioas ${b.accessIoasId}`);
  }
  for (const p of store.listPasids()) if (!hwptIds.has(p.hwptId)) v('references', `device ${p.deviceId}`, `pasid ${p.pasid} on missing hwpt ${p.hwptId}`);

  // Ownership, from the rows: one owner per group, no kernel-DMA driver beside it, clearances.
  const owners = new Map<number, Set<string>>();
  const claimed = new Set<number>();
  const own = (groupId: number, contextId: string) => owners.set(groupId, (owners.get(groupId) ?? new Set()).add(contextId));
  for (const g of holds) {
    own(g.groupId, g.contextId);
    if (g.ioasId !== null) claimed.add(g.groupId);
  }
  for (const b of bindings) {
    const d = byId.get(b.deviceId);
    if (!d || d.groupId === null) continue; // a device without a group is never bound (isolation.ts)
    own(d.groupId, b.contextId);
    claimed.add(d.groupId);
  }
  const principalOf = new Map(store.listContexts().map((c) => [c.id, c.principalId]));
  for (const [groupId, ctxs] of owners) {
    if (ctxs.size > 1) v('one-owner-per-group', `group ${groupId}`, `held by ${[...ctxs].join(', ')}`);
    const members = devices.filter((d) => d.groupId === groupId);
    if (claimed.has(groupId)) {
      for (const d of members.filter(isKernelDma)) v('no-kernel-dma-beside-owner', `group ${groupId}`, `${d.id} is on kernel driver ${d.driver}`);
    }
    for (const ctx of ctxs) {
      const clearances = fromDb.memory.principals.get(principalOf.get(ctx) ?? '')?.clearances ?? [];
      for (const d of members) if (d.label !== null && !clearances.includes(d.label)) v('clearance', `group ${groupId}`, `context ${ctx} is not cleared for ${d.label} of ${d.id}`);
    }
  }

  // Mappings: no overlap, in memory and in the rows (the rebuilt core reads them in order).
  let mappingCount = 0;
  for (const core of [live, fromDb]) {
    for (const space of core.objects.all('ioas').values()) {
      let prev: bigint | null = null;
      for (const m of space.mappings.from()) {
        if (core === live) mappingCount++;
        if (prev !== null && m.iova <= prev) v('no-overlapping-mappings', `ioas ${space.id}`, `mapping at 0x${m.iova.toString(16)} overlaps the one before it (${core === live ? 'memory' : 'database'})`);
        prev = m.last;
      }
    }
  }

  // Usage totals: memory's counters against what the rows add up to.
  const principals = store.listPrincipals();
  for (const p of principals) {
    const mem = live.quotas.usageFor(p.id);
    const db = fromDb.quotas.usageFor(p.id);
    for (const k of ['ioas', 'mappings', 'pinnedBytes'] as const) {
      if (mem[k] !== db[k]) v('usage-totals', `principal ${p.id}`, `${k}: memory says ${mem[k]}, the database ${db[k]}`);
    }
  }

  // Memory equal to the database: every object, its references and its state.
  const a = snapshot(live);
  const b = snapshot(fromDb);
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key);
    const y = b.get(key);
    if (x !== y) v('memory-equals-database', key, x === undefined ? 'in the database, not in memory' : y === undefined ? 'in memory, not in the database' : `memory ${x} / database ${y}`);
  }
  if (live.engine.policy !== fromDb.engine.policy) v('memory-equals-database', 'policy', `${live.engine.policy} / ${fromDb.engine.policy}`);

  // The inventory, its derived views, the system view and the principals: memory (caches included)
  // against the same derived afresh from the database.
  const m = readSnapshot(live);
  const d = readSnapshot(fromDb);
  for (const key of new Set([...m.keys(), ...d.keys()])) {
    const x = m.get(key);
    const y = d.get(key);
    if (x === y) continue;
    // A token hash is compared, never shown.
    const shown = key.startsWith('token:') ? 'the token hash differs' : `memory ${x} / database ${y}`;
    v('memory-equals-database', key, x === undefined ? 'in the database, not in memory' : y === undefined ? 'in memory, not in the database' : shown);
  }

  // The store's packed copy of the mapping rows (read at start-up instead of them) equals them.
  for (const problem of store.mappingCopyProblems()) v('mapping-copy-equals-rows', 'mappings', problem);

  return {
    ok: violations.length === 0,
    checked: {
      groups: groups.length,
      devices: devices.length,
      principals: principals.length,
      contexts: contextIds.size,
      ioas: ioasIds.size,
      hwpts: hwpts.length,
      groupHolds: holds.length,
      bindings: bindings.length,
      mappings: mappingCount,
    },
    violations,
  };
}

/**
 * What reads are answered from, as canonical text: the iommu, host warnings, every group and device
 * record, every group's view (as served: the cached one), the system summary, every principal and
 * its token hash.
 */
export function readSnapshot(core: Core): Map<string, string> {
  const { inventory, principals } = core.memory;
  const out = new Map<string, string>();
  if (inventory.hasTopology()) {
    out.set('iommu', canonical(inventory.getIommu()));
    out.set('system', canonical(core.system.summary()));
  }
  out.set('host-warnings', canonical(inventory.getHostWarnings()));
  for (const g of inventory.listGroups()) {
    out.set(`group:${g.id}`, canonical(g));
    out.set(`group-view:${g.id}`, canonical(inventory.groupView(g.id)));
    out.set(`group-members:${g.id}`, canonical(inventory.devicesInGroup(g.id).map((x) => x.id)));
  }
  out.set('group-views', canonical(inventory.groupViews().map((g) => g.id)));
  for (const x of inventory.listDevices()) {
    out.set(`device:${x.id}`, canonical(x));
    out.set(`device-children:${x.id}`, canonical(inventory.childrenOf(x.id).map((c) => c.id)));
  }
  for (const p of principals.all()) {
    out.set(`principal:${p.id}`, canonical(p));
    out.set(`token:${p.id}`, principals.tokenHashOf(p.id) ?? '');
  }
  return out;
}

/** JSON with object keys sorted and u64 values in hex: equal values, equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, x: unknown) => {
    if (typeof x === 'bigint') return `0x${x.toString(16)}`;
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** Every object as canonical text: its fields, what it uses and who uses it; an ioas with its mappings and domains. */
export function snapshot(core: Core): Map<string, string> {
  const entries: [string, string][] = [];
  const ref = (o: CoreObject) => `${o.type}:${o.id}`;
  const types = ['context', 'ioas', 'hwpt', 'group-hold', 'device-open', 'binding', 'attachment', 'pasid-attachment'] as const;
  for (const type of types) {
    for (const o of core.objects.all(type).values() as Iterable<ObjectTypes[typeof type]>) {
      const fields: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(o)) {
        // Derived caches and the collections compared on their own are left out.
        if (['users', 'mappings', 'pasids', 'attachment', 'createdAt', 'domainList', 'reservedCache', 'sharedPages'].includes(k)) continue;
        if (typeof val === 'function') continue;
        fields[k] = val;
      }
      fields.users = [...o.users].map(ref).sort();
      if (o.type === 'ioas') {
        const space = o as ObjectTypes['ioas'];
        fields.mappings = [...space.mappings.from()].map((m) => [m.iova, m.length, m.userAddress, m.read, m.write, m.pages.bytes, m.pages.writable]);
        fields.alignment = space.alignment;
        fields.reserved = space.reserved;
        fields.allowed = space.allowed;
      }
      entries.push([ref(o), JSON.stringify(fields, (_, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x))]);
    }
  }
  // Sorted: the order objects were made in is not state.
  return new Map(entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}
