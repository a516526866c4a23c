import type { Mapping } from '../core/model.js';
import type { IoasPort, MappingPort, MappingRowSink, StoredIoas } from '../core/ports.js';
import type { Db } from './database.js';
import { mappingSnapshotProblems, readMappingSnapshot } from './mapping-snapshot.js';
import { MultiInsert } from './multi-insert.js';
import { decodeRanges, decodeU64, encodeRanges, encodeU64 } from './values.js';

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
 * Codec of the `mappings` table: u64 columns offset by -2^63 (order kept), read/write and the pinned
 * pages' writability as flag bits, and the pages' size only when it differs from the mapping's (a copy).
 */
const MAPPING_COLUMNS = 7;

export const mappingCodec = {
  toRow(ioasId: number, m: Mapping): [number, bigint, bigint, bigint, number, number, bigint | null] {
    const flags = (m.read ? 1 : 0) | (m.write ? 2 : 0) | (m.pages.writable ? 4 : 0);
    const pagesBytes = m.pages.bytes === m.length ? null : encodeU64(m.pages.bytes);
    return [ioasId, encodeU64(m.iova), encodeU64(m.length), encodeU64(m.userAddress), flags, m.pages.id, pagesBytes];
  },
  /** One raw row to the sink, without intermediate objects (a restart reads a million). */
  fromRow(r: [number, bigint, bigint, bigint, number, number, bigint | null], sink: MappingRowSink): void {
    const flags = r[4];
    const length = decodeU64(r[2]);
    sink(r[0], decodeU64(r[1]), length, decodeU64(r[3]), (flags & 1) !== 0, (flags & 2) !== 0, r[5], r[6] === null ? length : decodeU64(r[6]), (flags & 4) !== 0);
  },
};

/** {@link IoasPort} and {@link MappingPort} on the `ioas` and `mappings` tables. */
export function ioasStore(db: Db): IoasPort & MappingPort {
  const p = (sql: string) => db.prepare(sql);
  const s = {
    insertIoas: p('INSERT INTO ioas (id, context_id, allowed_ranges, created_at) VALUES (@id, @context_id, @allowed_ranges, @created_at)'),
    setAllowed: p('UPDATE ioas SET allowed_ranges = ? WHERE id = ?'),
    deleteIoasMappings: p('DELETE FROM mappings WHERE ioas_id = ?'),
    deleteIoas: p('DELETE FROM ioas WHERE id = ?'),
    listIoas: p('SELECT id, context_id, allowed_ranges, created_at FROM ioas'),
    deleteMapping: p('DELETE FROM mappings WHERE ioas_id = ? AND iova = ?'),
    // The statement reads integers as BigInt (u64 columns); the small ones are cast to REAL so they
    // arrive as plain numbers: a restart reads a million rows and every BigInt is an allocation.
    listMappings: p(`SELECT CAST(ioas_id AS REAL), iova, length, user_address, CAST(flags AS REAL), CAST(pages_id AS REAL), pages_bytes
      FROM mappings ORDER BY ioas_id, iova`)
      .raw()
      .safeIntegers(true),
  };
  const insertMappings = new MultiInsert(db, 'INSERT INTO mappings (ioas_id, iova, length, user_address, flags, pages_id, pages_bytes)', MAPPING_COLUMNS);
  return {
    insertIoas: (i) => void s.insertIoas.run(ioasCodec.toRow(i)),
    setAllowedRanges: (ioasId, ranges) => void s.setAllowed.run(encodeRanges(ranges), ioasId),
    deleteIoas(id) {
      s.deleteIoasMappings.run(id);
      s.deleteIoas.run(id);
    },
    listIoas: () => (s.listIoas.all() as IoasRow[]).map(ioasCodec.fromRow),
    insertMappings(ioasId, ms) {
      const values: unknown[] = [];
      for (const m of ms) values.push(...mappingCodec.toRow(ioasId, m));
      insertMappings.run(values, ms.length);
    },
    deleteMapping: (ioasId, iova) => void s.deleteMapping.run(ioasId, encodeU64(iova)),
    eachMapping(sink) {
      // The packed copy written at the last clean stop, when the table has not changed since.
      if (readMappingSnapshot(db, sink)) return;
      for (const r of s.listMappings.iterate() as Iterable<[number, bigint, bigint, bigint, number, number, bigint | null]>) mappingCodec.fromRow(r, sink);
    },
    mappingCopyProblems: () => mappingSnapshotProblems(db),
  };
}
