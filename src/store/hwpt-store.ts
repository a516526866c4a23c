import type { HwptPort, StoredHwpt } from '../core/ports.js';
import type { Db } from './database.js';

/** Codec of the `hwpts` table: flags as 0/1, the nested stage-1 description as a JSON column. */
interface HwptRow {
  id: number;
  context_id: string;
  kind: StoredHwpt['kind'];
  ioas_id: number;
  parent_id: number | null;
  auto: number;
  nest_parent: number;
  pasid: number;
  dirty_tracking: number;
  data: string | null;
  created_at: string;
}

export const hwptCodec = {
  toRow: (h: StoredHwpt): HwptRow => ({
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
  }),
  fromRow: (r: HwptRow): StoredHwpt => ({
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
  }),
};

const COLUMNS = 'id, context_id, kind, ioas_id, parent_id, auto, nest_parent, pasid, dirty_tracking, data, created_at';

/** {@link HwptPort} on the `hwpts` table. */
export function hwptStore(db: Db): HwptPort {
  const insert = db.prepare(`INSERT INTO hwpts (${COLUMNS}) VALUES (@id, @context_id, @kind, @ioas_id, @parent_id, @auto, @nest_parent,
    @pasid, @dirty_tracking, @data, @created_at)`);
  const remove = db.prepare('DELETE FROM hwpts WHERE id = ?');
  const list = db.prepare(`SELECT ${COLUMNS} FROM hwpts ORDER BY id`);
  return {
    insertHwpt: (h) => void insert.run(hwptCodec.toRow(h)),
    deleteHwpt: (id) => void remove.run(id),
    listHwpts: () => (list.all() as HwptRow[]).map(hwptCodec.fromRow),
  };
}
