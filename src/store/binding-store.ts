import type { BindingPort } from '../core/ports.js';
import type { Db } from './database.js';

/**
 * {@link BindingPort} on the `bindings` table (a binding and its attachment: hwpt, or a virtual
 * device's access IOAS) and the `pasid_attachments` table (columns renamed in SQL).
 */
export function bindingStore(db: Db): BindingPort {
  const p = (sql: string) => db.prepare(sql);
  const s = {
    putBinding: p(`INSERT INTO bindings (device_id, context_id, hwpt_id, access_ioas_id) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET context_id = excluded.context_id, hwpt_id = excluded.hwpt_id, access_ioas_id = excluded.access_ioas_id`),
    deleteBinding: p('DELETE FROM bindings WHERE device_id = ?'),
    putPasid: p(`INSERT INTO pasid_attachments (device_id, pasid, hwpt_id) VALUES (?, ?, ?)
      ON CONFLICT (device_id, pasid) DO UPDATE SET hwpt_id = excluded.hwpt_id`),
    deletePasid: p('DELETE FROM pasid_attachments WHERE device_id = ? AND pasid = ?'),
    listBindings: p('SELECT device_id AS deviceId, context_id AS contextId, hwpt_id AS hwptId, access_ioas_id AS accessIoasId FROM bindings'),
    listPasids: p('SELECT device_id AS deviceId, pasid, hwpt_id AS hwptId FROM pasid_attachments'),
  };
  return {
    putBinding: (deviceId, contextId, hwptId, accessIoasId) => void s.putBinding.run(deviceId, contextId, hwptId, accessIoasId),
    deleteBinding: (deviceId) => void s.deleteBinding.run(deviceId),
    putPasid: (deviceId, pasid, hwptId) => void s.putPasid.run(deviceId, pasid, hwptId),
    deletePasid: (deviceId, pasid) => void s.deletePasid.run(deviceId, pasid),
    listBindings: () => s.listBindings.all() as ReturnType<BindingPort['listBindings']>,
    listPasids: () => s.listPasids.all() as ReturnType<BindingPort['listPasids']>,
  };
}
