import type { Database } from 'better-sqlite3';

import type { Mapping } from '../core/model.js';
import type { MappingRowSink } from '../core/ports.js';
import { decodeU64, encodeU64 } from './values.js';

/**
 * Codec of the `mappings` table: u64 columns offset by -2^63 (order kept), read/write and the pinned
 * pages' writability as flag bits, and the pages' size only when it differs from the mapping's (a copy).
 */
export const MAPPING_COLUMNS = 7;

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

/**
 * Every mapping row to `sink`, sorted by (ioas, iova). The statement reads integers as BigInt (u64
 * columns); the small ones are cast to REAL so they arrive as plain numbers: a restart reads a
 * million rows and every BigInt is an allocation.
 */
export function eachMappingRow(db: Database, sink: MappingRowSink): void {
  const read = db
    .prepare(
      `SELECT CAST(ioas_id AS REAL), iova, length, user_address, CAST(flags AS REAL), CAST(pages_id AS REAL), pages_bytes
       FROM mappings ORDER BY ioas_id, iova`,
    )
    .raw()
    .safeIntegers(true);
  for (const r of read.iterate() as Iterable<[number, bigint, bigint, bigint, number, number, bigint | null]>) mappingCodec.fromRow(r, sink);
}
