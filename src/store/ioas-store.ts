import type { IoasPort, MappingPort, StoredIoas } from '../core/ports.js';
import type { Db } from './database.js';
import { eachMappingRow, MAPPING_COLUMNS, mappingCodec } from './mapping-codec.js';
import type { Cache } from './cache.js';
import { MappingCopyGuard, mappingSnapshotProblems, readMappingSnapshot } from './mapping-snapshot.js';
import { MultiInsert } from './multi-insert.js';
import { decodeRanges, encodeRanges, encodeU64 } from './values.js';

/** Codec of the `ioas` table: allowed ranges are a JSON column. */
interface IoasRow {
  id: number;
  context_id: string;
  allowed_ranges: string;
  created_at: string;
}

export const ioasCodec = {
  toRow: (i: StoredIoas): IoasRow => ({ id: i.id, context_id: i.contextId, allowed_ranges: encodeRanges(i.allowed), created_at: i.createdAt }),
  fromRow: (r: IoasRow): StoredIoas => ({ id: r.id, contextId: r.context_id, allowed: decodeRanges(r.allowed_ranges), createdAt: r.created_at }),
};

/**
 * {@link IoasPort} and {@link MappingPort} on the `ioas` and `mappings` tables. Every write to the
 * mappings table first lets the packed copy's guard remove a copy still there (mapping-snapshot.ts);
 * the guard is the module's {@link Cache}, dropped when a transaction rolls back.
 */
export function ioasStore(db: Db): IoasPort & MappingPort & Cache {
  const guard = new MappingCopyGuard(db);
  const p = (sql: string) => db.prepare(sql);
  const s = {
    insertIoas: p('INSERT INTO ioas (id, context_id, allowed_ranges, created_at) VALUES (@id, @context_id, @allowed_ranges, @created_at)'),
    setAllowed: p('UPDATE ioas SET allowed_ranges = ? WHERE id = ?'),
    deleteIoasMappings: p('DELETE FROM mappings WHERE ioas_id = ?'),
    deleteIoas: p('DELETE FROM ioas WHERE id = ?'),
    listIoas: p('SELECT id, context_id, allowed_ranges, created_at FROM ioas'),
    deleteMapping: p('DELETE FROM mappings WHERE ioas_id = ? AND iova = ?'),
  };
  const insertMappings = new MultiInsert(db, 'INSERT INTO mappings (ioas_id, iova, length, user_address, flags, pages_id, pages_bytes)', MAPPING_COLUMNS);
  return {
    insertIoas: (i) => void s.insertIoas.run(ioasCodec.toRow(i)),
    setAllowedRanges: (ioasId, ranges) => void s.setAllowed.run(encodeRanges(ranges), ioasId),
    deleteIoas(id) {
      guard.beforeWrite();
      s.deleteIoasMappings.run(id);
      s.deleteIoas.run(id);
    },
    listIoas: () => (s.listIoas.all() as IoasRow[]).map(ioasCodec.fromRow),
    insertMappings(ioasId, ms) {
      guard.beforeWrite();
      const values: unknown[] = [];
      for (const m of ms) values.push(...mappingCodec.toRow(ioasId, m));
      insertMappings.run(values, ms.length);
    },
    deleteMapping(ioasId, iova) {
      guard.beforeWrite();
      s.deleteMapping.run(ioasId, encodeU64(iova));
    },
    eachMapping(sink) {
      // The packed copy written at the last clean stop, when the table has not changed since.
      if (!readMappingSnapshot(db, sink)) eachMappingRow(db, sink);
    },
    mappingCopyProblems: () => mappingSnapshotProblems(db),
    dropCache: () => guard.dropCache(),
  };
}
