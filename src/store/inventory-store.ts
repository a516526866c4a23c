import type { Device, GroupRecord, HostWarning, Iommu, IsolationWarning } from '../core/model.js';
import type { InventoryPort } from '../core/ports.js';
import type { Db } from './database.js';
import { decodeIommu, decodeRegions, encodeIommu, encodeRegions } from './values.js';

/** Codec of the `devices` table. */
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

const DEVICE_COLUMNS =
  'id, kind, group_id, parent_id, driver, label, pasid_capable, reset_group, vendor, device, class, description, reserved_regions';

export const deviceCodec = {
  toRow(d: Device): DeviceRow {
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
  },
  fromRow(r: DeviceRow): Device {
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
  },
};

/** Codec of the `groups` table: the kernel's domain type and the isolation warnings as JSON. */
interface GroupRow {
  id: number;
  kind: GroupRecord['kind'];
  type: string | null;
  warnings: string;
}

export const groupCodec = {
  toRow: (g: GroupRecord): GroupRow => ({ id: g.id, kind: g.kind, type: g.type ?? null, warnings: JSON.stringify(g.warnings ?? []) }),
  fromRow: (r: GroupRow): GroupRecord => ({ id: r.id, kind: r.kind, type: r.type, warnings: JSON.parse(r.warnings) as IsolationWarning[] }),
};

/** Findings about the host as a whole: one JSON row of the `settings` table (absent: none). */
export const hostWarningsCodec = {
  toRow: (w: readonly HostWarning[]): string => JSON.stringify(w.map((x) => ({ code: x.code, detail: x.detail }))),
  fromRow: (text: string | undefined): HostWarning[] => (text === undefined ? [] : (JSON.parse(text) as HostWarning[])),
};

/** The iommu's capabilities: one JSON row of the `settings` table. */
export const iommuCodec = { toRow: encodeIommu, fromRow: decodeIommu };

/** {@link InventoryPort} on the `settings` (iommu, host warnings), `groups` and `devices` tables. */
export function inventoryStore(db: Db): InventoryPort {
  const p = (sql: string) => db.prepare(sql);
  const s = {
    getSetting: p("SELECT value FROM settings WHERE key = 'iommu'").pluck(),
    putSetting: p("INSERT INTO settings (key, value) VALUES ('iommu', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    getHostWarnings: p("SELECT value FROM settings WHERE key = 'host-warnings'").pluck(),
    putHostWarnings: p("INSERT INTO settings (key, value) VALUES ('host-warnings', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
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
    updateDevice: p(`UPDATE devices SET kind = @kind, group_id = @group_id, parent_id = @parent_id, driver = @driver, label = @label,
      pasid_capable = @pasid_capable, reset_group = @reset_group, vendor = @vendor, device = @device, class = @class,
      description = @description, reserved_regions = @reserved_regions WHERE id = @id`),
    deleteDevice: p('DELETE FROM devices WHERE id = ?'),
    setDriver: p('UPDATE devices SET driver = ? WHERE id = ?'),
  };
  const devices = (rows: unknown[]) => (rows as DeviceRow[]).map(deviceCodec.fromRow);
  return {
    hasTopology: () => s.getSetting.get() !== undefined,
    getIommu(): Iommu {
      const text = s.getSetting.get() as string | undefined;
      if (text === undefined) throw new Error('no iommu in the database: the topology was never loaded');
      return iommuCodec.fromRow(text);
    },
    setIommu: (iommu) => void s.putSetting.run(iommuCodec.toRow(iommu)),
    getHostWarnings: () => hostWarningsCodec.fromRow(s.getHostWarnings.get() as string | undefined),
    setHostWarnings: (w) => void s.putHostWarnings.run(hostWarningsCodec.toRow(w)),
    listGroups: () => (s.listGroups.all() as GroupRow[]).map(groupCodec.fromRow),
    getGroup(id) {
      const row = s.getGroup.get(id) as GroupRow | undefined;
      return row && groupCodec.fromRow(row);
    },
    insertGroup: (g) => void s.insertGroup.run(groupCodec.toRow(g)),
    updateGroup: (g) => void s.updateGroup.run(groupCodec.toRow(g)),
    deleteGroup: (id) => void s.deleteGroup.run(id),
    listDevices: () => devices(s.listDevices.all()),
    getDevice(id) {
      const row = s.getDevice.get(id) as DeviceRow | undefined;
      return row && deviceCodec.fromRow(row);
    },
    devicesInGroup: (groupId) => devices(s.devicesInGroup.all(groupId)),
    childrenOf: (deviceId) => devices(s.childrenOf.all(deviceId)),
    insertDevice: (d) => void s.insertDevice.run(deviceCodec.toRow(d)),
    updateDevice: (d) => void s.updateDevice.run(deviceCodec.toRow(d)),
    deleteDevice: (id) => void s.deleteDevice.run(id),
    setDriver: (id, driver) => void s.setDriver.run(driver, id),
    // Children before parents, devices before groups: the foreign keys hold at every step.
    clearInventory: () => void db.exec('DELETE FROM devices WHERE parent_id IS NOT NULL; DELETE FROM devices; DELETE FROM groups;'),
  };
}
