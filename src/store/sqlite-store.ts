import type { Device, GroupRecord, Iommu, PolicyName, Principal } from '../core/model.js';
import type { AuditEntry, AuditRecord, Store, StoredPrincipal } from '../core/ports.js';
import { decodeIommu, decodeQuotas, decodeRegions, encodeIommu, encodeQuotas, encodeRegions } from './codec.js';
import type { Db } from './database.js';

interface DeviceRow {
  id: string;
  kind: Device['kind'];
  group_id: number;
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
export class SqliteStore implements Store {
  private readonly s;

  constructor(private readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      getSetting: p('SELECT value FROM settings WHERE key = ?').pluck(),
      putSetting: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      listGroups: p('SELECT id, kind FROM groups ORDER BY id'),
      getGroup: p('SELECT id, kind FROM groups WHERE id = ?'),
      insertGroup: p('INSERT INTO groups (id, kind) VALUES (?, ?)'),
      deleteGroup: p('DELETE FROM groups WHERE id = ?'),
      listDevices: p(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY id`),
      getDevice: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = ?`),
      devicesInGroup: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE group_id = ? ORDER BY id`),
      childrenOf: p(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE parent_id = ? ORDER BY id`),
      insertDevice: p(`INSERT INTO devices (${DEVICE_COLUMNS}) VALUES (@id, @kind, @group_id, @parent_id, @driver, @label,
        @pasid_capable, @reset_group, @vendor, @device, @class, @description, @reserved_regions)`),
      deleteDevice: p('DELETE FROM devices WHERE id = ?'),
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
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
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

  listGroups(): GroupRecord[] {
    return this.s.listGroups.all() as GroupRecord[];
  }

  getGroup(id: number): GroupRecord | undefined {
    return this.s.getGroup.get(id) as GroupRecord | undefined;
  }

  insertGroup(g: GroupRecord): void {
    this.s.insertGroup.run(g.id, g.kind);
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
    this.s.insertDevice.run({
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
    });
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
    const row = this.s.getPrincipal.get(id) as PrincipalRow | undefined;
    return row && toPrincipal(row);
  }

  findPrincipalByTokenHash(hash: string): Principal | undefined {
    const row = this.s.principalByToken.get(hash) as PrincipalRow | undefined;
    return row && toPrincipal(row);
  }

  principalNameTaken(name: string, exceptId?: string): boolean {
    return this.s.nameTaken.get(name, exceptId ?? null) !== undefined;
  }

  insertPrincipal(p: StoredPrincipal): void {
    this.s.insertPrincipal.run(p.id, p.name, p.role, JSON.stringify(p.clearances), encodeQuotas(p.quotas), p.tokenHash, p.createdAt);
  }

  updatePrincipal(p: Principal): void {
    this.s.updatePrincipal.run(p.name, p.role, JSON.stringify(p.clearances), encodeQuotas(p.quotas), p.id);
  }

  setTokenHash(id: string, hash: string): void {
    this.s.setTokenHash.run(hash, id);
  }

  deletePrincipal(id: string): void {
    this.s.deletePrincipal.run(id);
  }

  countAdmins(): number {
    return this.s.countAdmins.get() as number;
  }

  getPolicy(): PolicyName | undefined {
    return this.s.getSetting.get('policy') as PolicyName | undefined;
  }

  setPolicy(policy: PolicyName): void {
    this.s.putSetting.run('policy', policy);
  }

  audit(entry: AuditEntry): void {
    this.s.audit.run(new Date().toISOString(), entry.actor, entry.action, entry.target, entry.detail === undefined ? null : JSON.stringify(entry.detail));
  }

  listAudit(query: { afterSeq?: number; limit: number }): AuditRecord[] {
    const rows = this.s.listAudit.all(query.afterSeq ?? 0, query.limit) as (Omit<AuditRecord, 'detail'> & { detail: string | null })[];
    return rows.map((r) => ({ ...r, detail: r.detail === null ? undefined : (JSON.parse(r.detail) as unknown) }));
  }
}
