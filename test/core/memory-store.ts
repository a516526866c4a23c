import type { ContextRecord, Device, GroupRecord, HostWarning, Iommu, PolicyName, Principal, Range } from '../../src/core/model.js';
import type { AuditRecord, IdempotencyRecord, Store, StoredEvent, StoredHwpt, StoredIoas, StoredPrincipal } from '../../src/core/ports.js';

type MappingRow = [iova: bigint, length: bigint, userAddress: bigint, read: boolean, write: boolean, pagesId: number, pagesBytes: bigint, pagesWritable: boolean];

interface Tables {
  iommu: Iommu | undefined;
  policy: PolicyName | undefined;
  groups: Map<number, GroupRecord>;
  hostWarnings: HostWarning[];
  devices: Map<string, Device>;
  principals: Map<string, StoredPrincipal>;
  audit: AuditRecord[];
  contexts: Map<string, ContextRecord>;
  ioas: Map<number, StoredIoas>;
  mappings: Map<number, Map<bigint, MappingRow>>;
  hwpts: Map<number, StoredHwpt>;
  groupHolds: Map<number, { groupId: number; contextId: string; ioasId: number | null }>;
  deviceOpens: Map<string, { deviceId: string; groupId: number; count: number }>;
  bindings: Map<string, { deviceId: string; contextId: string; hwptId: number | null; accessIoasId: number | null }>;
  pasids: Map<string, { deviceId: string; pasid: number; hwptId: number }>;
  events: StoredEvent[];
  lastSeq: number;
  idempotency: Map<string, IdempotencyRecord>;
}

const empty = (): Tables => ({
  iommu: undefined,
  policy: undefined,
  groups: new Map(),
  hostWarnings: [],
  devices: new Map(),
  principals: new Map(),
  audit: [],
  contexts: new Map(),
  ioas: new Map(),
  mappings: new Map(),
  hwpts: new Map(),
  groupHolds: new Map(),
  deviceOpens: new Map(),
  bindings: new Map(),
  pasids: new Map(),
  events: [],
  lastSeq: 0,
  idempotency: new Map(),
});

const clone = <T,>(v: T): T => structuredClone(v);
const sortedBy = <T,>(xs: Iterable<T>, key: (x: T) => string | number) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

/**
 * Every port of the core on plain Maps, with transactions as snapshots (a failed one restores the
 * snapshot, a nested one its own). A test double that proves the ports are all the core needs: no
 * SQL, no foreign keys, nothing the core could lean on besides the port contracts.
 */
export function memoryStore(): Store & { tables(): Tables; failNextCommit(err: Error): void } {
  let t = empty();
  /** The tables as they were at begin (group commit), restored when the commit fails. */
  let opened: Tables | null = null;
  let failNextCommit: Error | null = null;
  const plain = <T,>(v: T): T => clone(v);
  const principalOf = (p: StoredPrincipal | undefined): Principal | undefined => {
    if (!p) return undefined;
    const { tokenHash: _hash, ...rest } = p;
    return plain(rest);
  };
  // As the groups table stores them: a domain type (null when not read from a host) and warnings.
  const group = (g: GroupRecord): GroupRecord => ({ ...plain(g), type: g.type ?? null, warnings: plain(g.warnings ?? []) });
  return {
    tables: () => t,
    transaction<T>(fn: () => T): T {
      const before = clone(t);
      try {
        return fn();
      } catch (err) {
        t = before;
        throw err;
      }
    },
    begin() {
      if (opened) throw new Error('a transaction is already open');
      opened = clone(t);
    },
    commit() {
      if (!opened) throw new Error('no transaction is open');
      const before = opened;
      opened = null;
      if (failNextCommit) {
        const err = failNextCommit;
        failNextCommit = null;
        t = before;
        throw err;
      }
    },
    failNextCommit(err: Error) {
      failNextCommit = err;
    },
    // inventory
    hasTopology: () => t.iommu !== undefined,
    getIommu() {
      if (!t.iommu) throw new Error('no iommu: the topology was never loaded');
      return plain(t.iommu);
    },
    setIommu: (iommu) => void (t.iommu = plain(iommu)),
    listGroups: () => sortedBy(t.groups.values(), (g) => g.id).map(plain),
    getGroup: (id) => plain(t.groups.get(id)),
    insertGroup(g) {
      if (t.groups.has(g.id)) throw new Error(`group ${g.id} exists`);
      t.groups.set(g.id, group(g));
    },
    updateGroup(g) {
      if (t.groups.has(g.id)) t.groups.set(g.id, group(g));
    },
    getHostWarnings: () => plain(t.hostWarnings),
    setHostWarnings: (w) => void (t.hostWarnings = plain([...w])),
    deleteGroup: (id) => void t.groups.delete(id),
    listDevices: () => sortedBy(t.devices.values(), (d) => d.id).map(plain),
    getDevice: (id) => plain(t.devices.get(id)),
    devicesInGroup: (groupId) => sortedBy([...t.devices.values()].filter((d) => d.groupId === groupId), (d) => d.id).map(plain),
    childrenOf: (id) => sortedBy([...t.devices.values()].filter((d) => d.parentId === id), (d) => d.id).map(plain),
    insertDevice(d) {
      if (t.devices.has(d.id)) throw new Error(`device ${d.id} exists`);
      t.devices.set(d.id, plain(d));
    },
    updateDevice(d) {
      if (t.devices.has(d.id)) t.devices.set(d.id, plain(d));
    },
    deleteDevice: (id) => void t.devices.delete(id),
    setDriver(id, driver) {
      const d = t.devices.get(id);
      if (d) d.driver = driver;
    },
    clearInventory() {
      t.devices.clear();
      t.groups.clear();
    },
    // principals
    listPrincipals: () => sortedBy(t.principals.values(), (p) => `${p.createdAt}\u0000${p.id}`).map((p) => principalOf(p)!),
    listTokenHashes: () => sortedBy(t.principals.values(), (p) => p.id).map((p) => ({ id: p.id, tokenHash: p.tokenHash })),
    getPrincipal: (id) => principalOf(t.principals.get(id)),
    findPrincipalByTokenHash: (hash) => principalOf([...t.principals.values()].find((p) => p.tokenHash === hash)),
    principalNameTaken: (name, exceptId) => [...t.principals.values()].some((p) => p.name === name && p.id !== exceptId),
    insertPrincipal: (p) => void t.principals.set(p.id, plain(p)),
    updatePrincipal(p) {
      const cur = t.principals.get(p.id);
      if (cur) t.principals.set(p.id, { ...plain(p), tokenHash: cur.tokenHash, createdAt: cur.createdAt });
    },
    setTokenHash(id, hash) {
      const cur = t.principals.get(id);
      if (cur) cur.tokenHash = hash;
    },
    deletePrincipal: (id) => void t.principals.delete(id),
    countAdmins: () => [...t.principals.values()].filter((p) => p.role === 'admin').length,
    // system and audit
    getPolicy: () => t.policy,
    setPolicy: (policy) => void (t.policy = policy),
    audit: (e) => void t.audit.push({ ...plain(e), seq: t.audit.length + 1, at: new Date(0).toISOString() }),
    listAudit: (q) => t.audit.filter((a) => a.seq > (q.afterSeq ?? 0)).slice(0, q.limit).map(plain),
    // contexts
    insertContext: (c) => void t.contexts.set(c.id, { id: c.id, principalId: c.principalId, name: c.name, leaseSeconds: c.leaseSeconds, expiresAt: c.expiresAt, createdAt: c.createdAt }),
    setContextLease(id, leaseSeconds, expiresAt) {
      const c = t.contexts.get(id);
      if (c) Object.assign(c, { leaseSeconds, expiresAt });
    },
    deleteContext: (id) => void t.contexts.delete(id),
    listContexts: () => [...t.contexts.values()].map(plain),
    // address spaces and mappings
    insertIoas: (i) => void t.ioas.set(i.id, plain(i)),
    setAllowedRanges(ioasId, ranges: Range[]) {
      const i = t.ioas.get(ioasId);
      if (i) i.allowed = plain(ranges);
    },
    deleteIoas(id) {
      t.ioas.delete(id);
      t.mappings.delete(id);
    },
    listIoas: () => [...t.ioas.values()].map(plain),
    insertMappings(ioasId, ms) {
      let rows = t.mappings.get(ioasId);
      if (!rows) t.mappings.set(ioasId, (rows = new Map()));
      for (const m of ms) {
        if (rows.has(m.iova)) throw new Error(`mapping at ${m.iova} exists`);
        rows.set(m.iova, [m.iova, m.length, m.userAddress, m.read, m.write, m.pages.id, m.pages.bytes, m.pages.writable]);
      }
    },
    deleteMapping: (ioasId, iova) => void t.mappings.get(ioasId)?.delete(iova),
    eachMapping(sink) {
      for (const ioasId of [...t.mappings.keys()].sort((a, b) => a - b)) {
        const rows = [...t.mappings.get(ioasId)!.values()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
        for (const r of rows) sink(ioasId, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
      }
    },
    mappingCopyProblems: () => [],
    // ownership
    insertHwpt: (h) => void t.hwpts.set(h.id, plain({ ...h })),
    deleteHwpt: (id) => void t.hwpts.delete(id),
    listHwpts: () => sortedBy(t.hwpts.values(), (h) => h.id).map(plain),
    putGroupHold: (groupId, contextId, ioasId) => void t.groupHolds.set(groupId, { groupId, contextId, ioasId }),
    deleteGroupHold: (groupId) => void t.groupHolds.delete(groupId),
    putDeviceOpen: (deviceId, groupId, count) => void t.deviceOpens.set(deviceId, { deviceId, groupId, count }),
    deleteDeviceOpen: (deviceId) => void t.deviceOpens.delete(deviceId),
    listGroupHolds: () => [...t.groupHolds.values()].map(plain),
    listDeviceOpens: () => [...t.deviceOpens.values()].map(plain),
    putBinding: (deviceId, contextId, hwptId, accessIoasId) => void t.bindings.set(deviceId, { deviceId, contextId, hwptId, accessIoasId }),
    deleteBinding: (deviceId) => void t.bindings.delete(deviceId),
    putPasid: (deviceId, pasid, hwptId) => void t.pasids.set(`${deviceId}/${pasid}`, { deviceId, pasid, hwptId }),
    deletePasid: (deviceId, pasid) => void t.pasids.delete(`${deviceId}/${pasid}`),
    listBindings: () => [...t.bindings.values()].map(plain),
    listPasids: () => [...t.pasids.values()].map(plain),
    // events and idempotency
    appendEvents(events, stateOf) {
      for (const e of events) {
        const state = stateOf(e);
        t.events.push({
          seq: ++t.lastSeq,
          at: new Date(0).toISOString(),
          type: e.type,
          objectKind: e.object.kind,
          objectId: String(e.object.id),
          scope: e.scope,
          principalId: e.principalId,
          contextId: e.contextId,
          state: state === null || state === undefined ? null : JSON.stringify(state),
        });
      }
      return events.length > 0 ? t.lastSeq : 0;
    },
    eventsAfter: (seq, limit) => t.events.filter((e) => e.seq > seq).slice(0, limit).map(plain),
    eventBounds: () => (t.events.length ? { oldest: t.events[0]!.seq, newest: t.events[t.events.length - 1]!.seq } : { oldest: t.lastSeq + 1, newest: t.lastSeq }),
    pruneEvents(keep) {
      const removed = Math.max(0, t.events.length - keep);
      t.events.splice(0, removed);
      return removed;
    },
    getIdempotency: (principalId, key) => plain(t.idempotency.get(`${principalId}\u0000${key}`)),
    putIdempotency: (r) => void t.idempotency.set(`${r.principalId}\u0000${r.key}`, plain(r)),
    expireIdempotency(before) {
      let n = 0;
      for (const [k, r] of t.idempotency) if (r.createdAt < before && t.idempotency.delete(k)) n++;
      return n;
    },
  };
}
