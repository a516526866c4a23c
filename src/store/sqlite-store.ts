import type { Context, Device, GroupRecord, HostWarning, Iommu, Mapping, PolicyName, Principal, Range } from '../core/model.js';
import type { AllocatorPort, AuditEntry, AuditRecord, OwnershipPort, Store, StoredHwpt, StoredIoas, StoredPrincipal, MappingRowSink } from '../core/ports.js';
import {
  decodeGroup,
  decodeHostWarnings,
  encodeGroup,
  encodeHostWarnings,
  type GroupRow,
  decodeIommu,
  decodeQuotas,
  decodeRanges,
  decodeRegions,
  decodeU64,
  encodeIommu,
  encodeQuotas,
  encodeRanges,
  encodeRegions,
  encodeU64,
} from './codec.js';
import type { Db } from './database.js';

interface DeviceRow {
  id: string;
  kind: Device['kind'];
  group_id: number | null;
  parent_id: string | null;
  driver: string;
  label: string | null;
  pasid_capable: number;
  reset_group: string | null;
  vendor: string | null;
  device: string | null;
  class: string | null;
  description: string | null;
  reserved_regions: string;
}

interface PrincipalRow {
  id: string;
  name: string;
  role: Principal['role'];
  clearances: string;
  quotas: string;
  created_at: string;
}

const DEVICE_COLUMNS =
  'id, kind, group_id, parent_id, driver, label, pasid_capable, reset_group, vendor, device, class, description, reserved_regions';
const PRINCIPAL_COLUMNS = 'id, name, role, clearances, quotas, created_at';

function toDevice(r: DeviceRow): Device {
  return {
    id: r.id,
    kind: r.kind,
    groupId: r.group_id,
    parentId: r.parent_id,
    driver: r.driver,
    label: r.label,
    pasidCapable: r.pasid_capable === 1,
    resetGroup: r.reset_group,
    vendor: r.vendor,
    device: r.device,
    class: r.class,
    description: r.description,
    reservedRegions: decodeRegions(r.reserved_regions),
  };
}

function deviceRow(d: Device): DeviceRow {
  return {
    id: d.id,
    kind: d.kind,
    group_id: d.groupId,
    parent_id: d.parentId,
    driver: d.driver,
    label: d.label,
    pasid_capable: d.pasidCapable ? 1 : 0,
    reset_group: d.resetGroup,
    vendor: d.vendor,
    device: d.device,
    class: d.class,
    description: d.description,
    reserved_regions: encodeRegions(d.reservedRegions),
  };
}

function toPrincipal(r: PrincipalRow): Principal {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    clearances: JSON.parse(r.clearances) as string[],
    quotas: decodeQuotas(r.quotas),
    createdAt: r.created_at,
  };
}

/** The core's {@link Store} on better-sqlite3. Statements are prepared once; all calls are synchronous. */
export class SqliteStore implements Store, AllocatorPort, OwnershipPort {
  private readonly s;
  /**
   * Principals and the policy are read on every request (authentication, quotas, rule set) and
   * written rarely; these caches are dropped on every write to them and whenever a transaction
   * fails, so they never hold a value the database does not.
   */
  private readonly principalCache = new Map<string, Principal | undefined>();
  private readonly tokenCache = new Map<string, string | undefined>();
  private policyCache: { value: PolicyName | undefined } | null = null;
  /** One transaction wrapper for every change: better-sqlite3 builds it (and its savepoint
   * variants for nesting) once, instead of on every call. */
  private readonly runInTransaction: (fn: () => unknown) => unknown;

  constructor(private readonly db: Db) {
    this.runInTransaction = db.transaction((fn: () => unknown) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      getSetting: p('SELECT value FROM settings WHERE key = ?').pluck(),
      putSetting: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      listGroups: p('SELECT id, kind, type, warnings FROM groups ORDER BY id'),
      getGroup: p('SELECT id, kind, type, warnings FROM groups WHERE id = ?'),
      insertGroup: p('INSERT INTO groups (id, kind, type, warnings) VALUES (@id, @kind, @type, @warnings)'),
      updateGroup: p('UPDATE groups SET kind = @kind, type = @type, warnings = @warnings WHERE id = @id'),
      deleteGroup: p('DELETE FROM groups WHERE id = ?'),
      listDevices: p(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY id`),
      getDevice: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = ?`),
      devicesInGroup: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE group_id = ? ORDER BY id`),
      childrenOf: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE parent_id = ? ORDER BY id`),
      insertDevice: p(`INSERT INTO devices (${DEVICE_COLUMNS}) VALUES (@id, @kind, @group_id, @parent_id, @driver, @label,
        @pasid_capable, @reset_group, @vendor, @device, @class, @description, @reserved_regions)`),
      deleteDevice: p('DELETE FROM devices WHERE id = ?'),
      updateDevice: p(`UPDATE devices SET kind = @kind, group_id = @group_id, parent_id = @parent_id, driver = @driver, label = @label,
        pasid_capable = @pasid_capable, reset_group = @reset_group, vendor = @vendor, device = @device, class = @class,
        description = @description, reserved_regions = @reserved_regions WHERE id = @id`),
      setDriver: p('UPDATE devices SET driver = ? WHERE id = ?'),
      listPrincipals: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals ORDER BY created_at, id`),
      getPrincipal: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE id = ?`),
      principalByToken: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE token_hash = ?`),
      nameTaken: p('SELECT 1 FROM principals WHERE name = ? AND id IS NOT ?').pluck(),
      insertPrincipal: p(`INSERT INTO principals (id, name, role, clearances, quotas, token_hash, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      updatePrincipal: p('UPDATE principals SET name = ?, role = ?, clearances = ?, quotas = ? WHERE id = ?'),
      setTokenHash: p('UPDATE principals SET token_hash = ? WHERE id = ?'),
      deletePrincipal: p('DELETE FROM principals WHERE id = ?'),
      countAdmins: p("SELECT count(*) FROM principals WHERE role = 'admin'").pluck(),
      audit: p('INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)'),
      listAudit: p('SELECT seq, at, actor, action, target, detail FROM audit WHERE seq > ? ORDER BY seq LIMIT ?'),
      insertContext: p('INSERT INTO contexts (id, principal_id, name, lease_seconds, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
      setContextLease: p('UPDATE contexts SET lease_seconds = ?, expires_at = ? WHERE id = ?'),
      deleteContext: p('DELETE FROM contexts WHERE id = ?'),
      listContexts: p('SELECT id, principal_id, name, lease_seconds, expires_at, created_at FROM contexts'),
      insertIoas: p('INSERT INTO ioas (id, context_id, allowed_ranges, created_at) VALUES (?, ?, ?, ?)'),
      setAllowed: p('UPDATE ioas SET allowed_ranges = ? WHERE id = ?'),
      deleteIoasMappings: p('DELETE FROM mappings WHERE ioas_id = ?'),
      deleteIoas: p('DELETE FROM ioas WHERE id = ?'),
      listIoas: p('SELECT id, context_id, allowed_ranges, created_at FROM ioas'),
      insertMapping: p('INSERT INTO mappings (ioas_id, iova, length, user_address, flags, pages_id, pages_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      deleteMapping: p('DELETE FROM mappings WHERE ioas_id = ? AND iova = ?'),
      // The statement reads integers as BigInt (u64 columns); the small ones are cast to REAL so they
      // arrive as plain numbers: a restart reads a million rows and every BigInt is an allocation.
      listMappings: p(`SELECT CAST(ioas_id AS REAL), iova, length, user_address, CAST(flags AS REAL), CAST(pages_id AS REAL), pages_bytes
        FROM mappings ORDER BY ioas_id, iova`).raw().safeIntegers(true),
      putGroupHold: p(`INSERT INTO group_holds (group_id, context_id, ioas_id) VALUES (?, ?, ?)
        ON CONFLICT (group_id) DO UPDATE SET context_id = excluded.context_id, ioas_id = excluded.ioas_id`),
      deleteGroupHold: p('DELETE FROM group_holds WHERE group_id = ?'),
      putDeviceOpen: p(`INSERT INTO device_opens (device_id, group_id, count) VALUES (?, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET count = excluded.count`),
      deleteDeviceOpen: p('DELETE FROM device_opens WHERE device_id = ?'),
      insertHwpt: p(`INSERT INTO hwpts (id, context_id, kind, ioas_id, parent_id, auto, nest_parent, pasid, dirty_tracking, data, created_at)
        VALUES (@id, @context_id, @kind, @ioas_id, @parent_id, @auto, @nest_parent, @pasid, @dirty_tracking, @data, @created_at)`),
      deleteHwpt: p('DELETE FROM hwpts WHERE id = ?'),
      putBinding: p(`INSERT INTO bindings (device_id, context_id, hwpt_id, access_ioas_id) VALUES (?, ?, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET context_id = excluded.context_id, hwpt_id = excluded.hwpt_id, access_ioas_id = excluded.access_ioas_id`),
      deleteBinding: p('DELETE FROM bindings WHERE device_id = ?'),
      putPasid: p(`INSERT INTO pasid_attachments (device_id, pasid, hwpt_id) VALUES (?, ?, ?)
        ON CONFLICT (device_id, pasid) DO UPDATE SET hwpt_id = excluded.hwpt_id`),
      deletePasid: p('DELETE FROM pasid_attachments WHERE device_id = ? AND pasid = ?'),
      listGroupHolds: p('SELECT group_id AS groupId, context_id AS contextId, ioas_id AS ioasId FROM group_holds'),
      listDeviceOpens: p('SELECT device_id AS deviceId, group_id AS groupId, count FROM device_opens'),
      listHwpts: p('SELECT id, context_id, kind, ioas_id, parent_id, auto, nest_parent, pasid, dirty_tracking, data, created_at FROM hwpts ORDER BY id'),
      listBindings: p('SELECT device_id AS deviceId, context_id AS contextId, hwpt_id AS hwptId, access_ioas_id AS accessIoasId FROM bindings'),
      listPasids: p('SELECT device_id AS deviceId, pasid, hwpt_id AS hwptId FROM pasid_attachments'),
    };
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.runInTransaction(fn) as T;
    } catch (err) {
      this.dropCaches();
      throw err;
    }
  }

  private dropCaches(): void {
    this.principalCache.clear();
    this.tokenCache.clear();
    this.policyCache = null;
  }

  getIommu(): Iommu {
    const text = this.s.getSetting.get('iommu') as string | undefined;
    if (text === undefined) throw new Error('no iommu in the database: the topology was never loaded');
    return decodeIommu(text);
  }

  setIommu(iommu: Iommu): void {
    this.s.putSetting.run('iommu', encodeIommu(iommu));
  }

  hasTopology(): boolean {
    return this.s.getSetting.get('iommu') !== undefined;
  }

  getHostWarnings(): HostWarning[] {
    return decodeHostWarnings(this.s.getSetting.get('host-warnings') as string | undefined);
  }

  setHostWarnings(warnings: readonly HostWarning[]): void {
    this.s.putSetting.run('host-warnings', encodeHostWarnings(warnings));
  }

  listGroups(): GroupRecord[] {
    return (this.s.listGroups.all() as GroupRow[]).map(decodeGroup);
  }

  getGroup(id: number): GroupRecord | undefined {
    const row = this.s.getGroup.get(id) as GroupRow | undefined;
    return row && decodeGroup(row);
  }

  insertGroup(g: GroupRecord): void {
    this.s.insertGroup.run(encodeGroup(g));
  }

  updateGroup(g: GroupRecord): void {
    this.s.updateGroup.run(encodeGroup(g));
  }

  deleteGroup(id: number): void {
    this.s.deleteGroup.run(id);
  }

  listDevices(): Device[] {
    return (this.s.listDevices.all() as DeviceRow[]).map(toDevice);
  }

  getDevice(id: string): Device | undefined {
    const row = this.s.getDevice.get(id) as DeviceRow | undefined;
    return row && toDevice(row);
  }

  devicesInGroup(groupId: number): Device[] {
    return (this.s.devicesInGroup.all(groupId) as DeviceRow[]).map(toDevice);
  }

  childrenOf(deviceId: string): Device[] {
    return (this.s.childrenOf.all(deviceId) as DeviceRow[]).map(toDevice);
  }

  insertDevice(d: Device): void {
    this.s.insertDevice.run(deviceRow(d));
  }

  updateDevice(d: Device): void {
    this.s.updateDevice.run(deviceRow(d));
  }

  deleteDevice(id: string): void {
    this.s.deleteDevice.run(id);
  }

  setDriver(id: string, driver: string): void {
    this.s.setDriver.run(driver, id);
  }

  clearInventory(): void {
    // Children before parents, devices before groups: the foreign keys hold at every step.
    this.db.exec('DELETE FROM devices WHERE parent_id IS NOT NULL; DELETE FROM devices; DELETE FROM groups;');
  }

  listPrincipals(): Principal[] {
    return (this.s.listPrincipals.all() as PrincipalRow[]).map(toPrincipal);
  }

  getPrincipal(id: string): Principal | undefined {
    if (this.principalCache.has(id)) return this.principalCache.get(id);
    const row = this.s.getPrincipal.get(id) as PrincipalRow | undefined;
    const principal = row && toPrincipal(row);
    this.principalCache.set(id, principal);
    return principal;
  }

  findPrincipalByTokenHash(hash: string): Principal | undefined {
    if (!this.tokenCache.has(hash)) {
      const row = this.s.principalByToken.get(hash) as PrincipalRow | undefined;
      // Unknown tokens are not remembered: a stream of bad tokens must not grow the cache.
      if (!row) return undefined;
      this.tokenCache.set(hash, row.id);
    }
    return this.getPrincipal(this.tokenCache.get(hash)!);
  }

  principalNameTaken(name: string, exceptId?: string): boolean {
    return this.s.nameTaken.get(name, exceptId ?? null) !== undefined;
  }

  insertPrincipal(p: StoredPrincipal): void {
    this.dropCaches();
    this.s.insertPrincipal.run(p.id, p.name, p.role, JSON.stringify(p.clearances), encodeQuotas(p.quotas), p.tokenHash, p.createdAt);
  }

  updatePrincipal(p: Principal): void {
    this.dropCaches();
    this.s.updatePrincipal.run(p.name, p.role, JSON.stringify(p.clearances), encodeQuotas(p.quotas), p.id);
  }

  setTokenHash(id: string, hash: string): void {
    this.dropCaches();
    this.s.setTokenHash.run(hash, id);
  }

  deletePrincipal(id: string): void {
    this.dropCaches();
    this.s.deletePrincipal.run(id);
  }

  countAdmins(): number {
    return this.s.countAdmins.get() as number;
  }

  getPolicy(): PolicyName | undefined {
    if (!this.policyCache) this.policyCache = { value: this.s.getSetting.get('policy') as PolicyName | undefined };
    return this.policyCache.value;
  }

  setPolicy(policy: PolicyName): void {
    this.dropCaches();
    this.s.putSetting.run('policy', policy);
  }

  audit(entry: AuditEntry): void {
    this.s.audit.run(new Date().toISOString(), entry.actor, entry.action, entry.target, entry.detail === undefined ? null : JSON.stringify(entry.detail));
  }

  listAudit(query: { afterSeq?: number; limit: number }): AuditRecord[] {
    const rows = this.s.listAudit.all(query.afterSeq ?? 0, query.limit) as (Omit<AuditRecord, 'detail'> & { detail: string | null })[];
    return rows.map((r) => ({ ...r, detail: r.detail === null ? undefined : (JSON.parse(r.detail) as unknown) }));
  }

  // ---- allocator --------------------------------------------------------------------------------

  insertContext(c: Context): void {
    this.s.insertContext.run(c.id, c.principalId, c.name, c.leaseSeconds, c.expiresAt, c.createdAt);
  }

  setContextLease(id: string, leaseSeconds: number | null, expiresAt: number | null): void {
    this.s.setContextLease.run(leaseSeconds, expiresAt, id);
  }

  deleteContext(id: string): void {
    this.s.deleteContext.run(id);
  }

  insertIoas(ioas: StoredIoas): void {
    this.s.insertIoas.run(ioas.id, ioas.contextId, encodeRanges(ioas.allowed), ioas.createdAt);
  }

  setAllowedRanges(ioasId: number, ranges: Range[]): void {
    this.s.setAllowed.run(encodeRanges(ranges), ioasId);
  }

  deleteIoas(id: number): void {
    this.s.deleteIoasMappings.run(id);
    this.s.deleteIoas.run(id);
  }

  insertMapping(ioasId: number, m: Mapping): void {
    const flags = (m.read ? 1 : 0) | (m.write ? 2 : 0) | (m.pages.writable ? 4 : 0);
    const pagesBytes = m.pages.bytes === m.length ? null : encodeU64(m.pages.bytes);
    this.s.insertMapping.run(ioasId, encodeU64(m.iova), encodeU64(m.length), encodeU64(m.userAddress), flags, m.pages.id, pagesBytes);
  }

  deleteMapping(ioasId: number, iova: bigint): void {
    this.s.deleteMapping.run(ioasId, encodeU64(iova));
  }

  loadAllocator(): ReturnType<AllocatorPort['loadAllocator']> {
    const contexts = (this.s.listContexts.all() as { id: string; principal_id: string; name: string | null; lease_seconds: number | null; expires_at: number | null; created_at: string }[]).map((r) => ({
      id: r.id,
      principalId: r.principal_id,
      name: r.name,
      leaseSeconds: r.lease_seconds,
      expiresAt: r.expires_at,
      createdAt: r.created_at,
    }));
    const ioas = (this.s.listIoas.all() as { id: number; context_id: string; allowed_ranges: string; created_at: string }[]).map((r) => ({
      id: r.id,
      contextId: r.context_id,
      allowed: decodeRanges(r.allowed_ranges),
      createdAt: r.created_at,
    }));
    const rows = this.s.listMappings;
    const eachMapping = (sink: MappingRowSink): void => {
      for (const r of rows.iterate() as Iterable<[number, bigint, bigint, bigint, number, number, bigint | null]>) {
        const flags = r[4];
        const length = decodeU64(r[2]);
        sink(r[0], decodeU64(r[1]), length, decodeU64(r[3]), (flags & 1) !== 0, (flags & 2) !== 0, r[5], r[6] === null ? length : decodeU64(r[6]), (flags & 4) !== 0);
      }
    };
    return { contexts, ioas, eachMapping };
  }

  // ---- ownership --------------------------------------------------------------------------------

  putGroupHold(groupId: number, contextId: string, ioasId: number | null): void {
    this.s.putGroupHold.run(groupId, contextId, ioasId);
  }

  deleteGroupHold(groupId: number): void {
    this.s.deleteGroupHold.run(groupId);
  }

  putDeviceOpen(deviceId: string, groupId: number, count: number): void {
    this.s.putDeviceOpen.run(deviceId, groupId, count);
  }

  deleteDeviceOpen(deviceId: string): void {
    this.s.deleteDeviceOpen.run(deviceId);
  }

  insertHwpt(h: StoredHwpt): void {
    this.s.insertHwpt.run({
      id: h.id,
      context_id: h.contextId,
      kind: h.kind,
      ioas_id: h.ioasId,
      parent_id: h.parentId,
      auto: h.auto ? 1 : 0,
      nest_parent: h.nestParent ? 1 : 0,
      pasid: h.pasid ? 1 : 0,
      dirty_tracking: h.dirtyTracking ? 1 : 0,
      data: h.data === null || h.data === undefined ? null : JSON.stringify(h.data),
      created_at: h.createdAt,
    });
  }

  deleteHwpt(id: number): void {
    this.s.deleteHwpt.run(id);
  }

  putBinding(deviceId: string, contextId: string, hwptId: number | null, accessIoasId: number | null): void {
    this.s.putBinding.run(deviceId, contextId, hwptId, accessIoasId);
  }

  deleteBinding(deviceId: string): void {
    this.s.deleteBinding.run(deviceId);
  }

  putPasid(deviceId: string, pasid: number, hwptId: number): void {
    this.s.putPasid.run(deviceId, pasid, hwptId);
  }

  deletePasid(deviceId: string, pasid: number): void {
    this.s.deletePasid.run(deviceId, pasid);
  }

  loadOwnership(): ReturnType<OwnershipPort['loadOwnership']> {
    type HwptRow = { id: number; context_id: string; kind: StoredHwpt['kind']; ioas_id: number; parent_id: number | null; auto: number; nest_parent: number; pasid: number; dirty_tracking: number; data: string | null; created_at: string };
    return {
      groupHolds: this.s.listGroupHolds.all() as { groupId: number; contextId: string; ioasId: number | null }[],
      deviceOpens: this.s.listDeviceOpens.all() as { deviceId: string; groupId: number; count: number }[],
      hwpts: (this.s.listHwpts.all() as HwptRow[]).map((r) => ({
        id: r.id,
        contextId: r.context_id,
        kind: r.kind,
        ioasId: r.ioas_id,
        parentId: r.parent_id,
        auto: r.auto === 1,
        nestParent: r.nest_parent === 1,
        pasid: r.pasid === 1,
        dirtyTracking: r.dirty_tracking === 1,
        data: r.data === null ? null : (JSON.parse(r.data) as unknown),
        createdAt: r.created_at,
      })),
      bindings: this.s.listBindings.all() as { deviceId: string; contextId: string; hwptId: number | null; accessIoasId: number | null }[],
      pasids: this.s.listPasids.all() as { deviceId: string; pasid: number; hwptId: number }[],
    };
  }
}
