import type { GroupHoldPort } from '../core/ports.js';
import type { Db } from './database.js';

/** {@link GroupHoldPort} on the `group_holds` and `device_opens` tables (their columns are the records', renamed in SQL). */
export function groupHoldStore(db: Db): GroupHoldPort {
  const p = (sql: string) => db.prepare(sql);
  const s = {
    putHold: p(`INSERT INTO group_holds (group_id, context_id, ioas_id) VALUES (?, ?, ?)
      ON CONFLICT (group_id) DO UPDATE SET context_id = excluded.context_id, ioas_id = excluded.ioas_id`),
    deleteHold: p('DELETE FROM group_holds WHERE group_id = ?'),
    putOpen: p(`INSERT INTO device_opens (device_id, group_id, count) VALUES (?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET count = excluded.count`),
    deleteOpen: p('DELETE FROM device_opens WHERE device_id = ?'),
    listHolds: p('SELECT group_id AS groupId, context_id AS contextId, ioas_id AS ioasId FROM group_holds'),
    listOpens: p('SELECT device_id AS deviceId, group_id AS groupId, count FROM device_opens'),
  };
  return {
    putGroupHold: (groupId, contextId, ioasId) => void s.putHold.run(groupId, contextId, ioasId),
    deleteGroupHold: (groupId) => void s.deleteHold.run(groupId),
    putDeviceOpen: (deviceId, groupId, count) => void s.putOpen.run(deviceId, groupId, count),
    deleteDeviceOpen: (deviceId) => void s.deleteOpen.run(deviceId),
    listGroupHolds: () => s.listHolds.all() as ReturnType<GroupHoldPort['listGroupHolds']>,
    listDeviceOpens: () => s.listOpens.all() as ReturnType<GroupHoldPort['listDeviceOpens']>,
  };
}
