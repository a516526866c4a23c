import type { MappingRowSink } from '../core/ports.js';
import type { Database } from 'better-sqlite3';

/** The connection (database.ts's Db, named here without importing it: database.ts closes through this module). */
type Db = Database;

/**
 * The packed copy of the `mappings` table (`mapping_snapshot`): written at a clean stop, read by the
 * next start instead of the rows. Crossing a million rows from SQLite into JavaScript costs seconds;
 * reading a few large blobs and decoding typed-array columns costs a fraction of that.
 *
 * The copy is a cache and never a second source of truth: migration 0006's triggers empty it in the
 * same transaction as any change to the mappings table (by ioasd or any other SQLite client), so a
 * copy that is present equals the table. Start-up still checks it (format, byte order, row count)
 * and reads the table when anything is off; the self-check compares it row by row.
 *
 * Format of one part (up to {@link PART_ROWS} rows, in (ioas_id, iova) order), little- or big-endian
 * as the writing host (a reader of the other byte order falls back to the table):
 *   header   16 bytes: "ioasdMS1", u32 row count n, u32 0x01020304 (the byte-order mark)
 *   iova         u64[n]
 *   length       u64[n]
 *   userAddress  u64[n]
 *   pagesBytes   u64[n]  (0 where flag {@link SAME_BYTES} is set)
 *   pagesId      f64[n]
 *   ioasId       u32[n]
 *   flags        u8[n]   1 read, 2 write, 4 pages writable, 128 the pages' size is the mapping's length
 */

const MAGIC = 'ioasdMS1';
const BOM = 0x01020304;
const HEADER = 16;
const ROW_BYTES = 8 * 5 + 4 + 1;
/** Rows per part: about 2.9 MB of blob each. */
export const PART_ROWS = 1 << 16;
const SAME_BYTES = 128;

type EncodedRow = [number, bigint, bigint, bigint, number, number, bigint | null];

/** Every mapping row as stored (u64 columns offset-encoded), in index order. */
function tableRows(db: Db): Iterable<EncodedRow> {
  return db
    .prepare(
      `SELECT CAST(ioas_id AS REAL), iova, length, user_address, CAST(flags AS REAL), CAST(pages_id AS REAL), pages_bytes
       FROM mappings ORDER BY ioas_id, iova`,
    )
    .raw()
    .safeIntegers(true)
    .iterate() as Iterable<EncodedRow>;
}

function columns(buf: ArrayBuffer, byteOffset: number, n: number) {
  let at = byteOffset + HEADER;
  const u64 = () => {
    const a = new BigUint64Array(buf, at, n);
    at += 8 * n;
    return a;
  };
  const iova = u64();
  const length = u64();
  const userAddress = u64();
  const pagesBytes = u64();
  const pagesId = new Float64Array(buf, at, n);
  at += 8 * n;
  const ioasId = new Uint32Array(buf, at, n);
  at += 4 * n;
  const flags = new Uint8Array(buf, at, n);
  return { iova, length, userAddress, pagesBytes, pagesId, ioasId, flags };
}

/** Packs encoded rows into one part. u64 columns: the stored value - 2^63, so flipping bit 63 gives the value. */
function pack(rows: EncodedRow[]): Buffer {
  const n = rows.length;
  const buf = Buffer.alloc(HEADER + ROW_BYTES * n);
  const ab = buf.buffer as ArrayBuffer;
  buf.write(MAGIC, 0, 'latin1');
  const head = new Uint32Array(ab, buf.byteOffset + 8, 2);
  head[0] = n;
  head[1] = BOM;
  const c = columns(ab, buf.byteOffset, n);
  const signed = (a: BigUint64Array) => new BigInt64Array(a.buffer, a.byteOffset, a.length);
  const iova = signed(c.iova);
  const length = signed(c.length);
  const userAddress = signed(c.userAddress);
  const pagesBytes = signed(c.pagesBytes);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    c.ioasId[i] = r[0];
    iova[i] = r[1];
    length[i] = r[2];
    userAddress[i] = r[3];
    c.flags[i] = r[4] | (r[6] === null ? SAME_BYTES : 0);
    c.pagesId[i] = r[5];
    if (r[6] !== null) pagesBytes[i] = r[6];
  }
  // Offset-encoded to plain u64: flip bit 63 of every value (the high word's top bit, host order).
  const hi = BOM === new Uint32Array(new Uint8Array([4, 3, 2, 1]).buffer)[0] ? 1 : 0;
  const words = new Uint32Array(ab, buf.byteOffset + HEADER, 8 * n);
  for (let i = hi; i < words.length; i += 2) words[i]! ^= 0x80000000;
  for (let i = 0; i < n; i++) if ((c.flags[i]! & SAME_BYTES) !== 0) c.pagesBytes[i] = 0n;
  return buf;
}

interface Part {
  part: number;
  rows: number;
  data: Buffer;
}

/** A part's columns when its header is sound and of this host's byte order; otherwise undefined. */
function unpack(p: Part): ReturnType<typeof columns> | undefined {
  const { data } = p;
  if (data.length < HEADER || data.toString('latin1', 0, 8) !== MAGIC) return undefined;
  // Typed arrays need their element alignment: a blob that is not 8-aligned is copied once.
  const bytes = data.byteOffset % 8 === 0 ? data : Buffer.from(data);
  const head = new Uint32Array(bytes.buffer, bytes.byteOffset + 8, 2);
  const n = head[0]!;
  if (head[1] !== BOM || n !== p.rows || bytes.length !== HEADER + ROW_BYTES * n) return undefined;
  return columns(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
}

function readParts(db: Db): Part[] {
  return db.prepare('SELECT part, rows, data FROM mapping_snapshot ORDER BY part').all() as Part[];
}

/** The parts, decoded, when the copy is present and whole (numbered 0.., one row count per table row). */
function usableParts(db: Db): ReturnType<typeof columns>[] | undefined {
  const parts = readParts(db);
  if (parts.length === 0) return undefined;
  const out: ReturnType<typeof columns>[] = [];
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    const cols = parts[i]!.part === i ? unpack(parts[i]!) : undefined;
    if (!cols) return undefined;
    out.push(cols);
    total += cols.iova.length;
  }
  const count = db.prepare('SELECT count(*) FROM mappings').pluck().get() as number;
  return total === count ? out : undefined;
}

/**
 * Calls `sink` for every mapping from the packed copy and answers true; answers false (calling
 * nothing) when there is no usable copy, and the caller reads the table.
 */
export function readMappingSnapshot(db: Db, sink: MappingRowSink): boolean {
  const parts = usableParts(db);
  if (!parts) return false;
  for (const c of parts) {
    const { iova, length, userAddress, pagesBytes, pagesId, ioasId, flags } = c;
    for (let i = 0; i < iova.length; i++) {
      const f = flags[i]!;
      const len = length[i]!;
      sink(ioasId[i]!, iova[i]!, len, userAddress[i]!, (f & 1) !== 0, (f & 2) !== 0, pagesId[i]!, (f & SAME_BYTES) !== 0 ? len : pagesBytes[i]!, (f & 4) !== 0);
    }
  }
  return true;
}

/**
 * Writes the packed copy of the mappings table, unless one is already there (the table has not
 * changed since it was written) or the table is empty. Called at a clean stop; answers the rows packed.
 */
export function writeMappingSnapshot(db: Db): number {
  if (db.prepare('SELECT EXISTS (SELECT 1 FROM mapping_snapshot)').pluck().get() === 1) return 0;
  // The rows are read whole before the first INSERT: a connection runs no statement while another iterates.
  const parts: { rows: number; data: Buffer }[] = [];
  let rows: EncodedRow[] = [];
  const flush = () => {
    parts.push({ rows: rows.length, data: pack(rows) });
    rows = [];
  };
  for (const r of tableRows(db)) {
    rows.push(r);
    if (rows.length === PART_ROWS) flush();
  }
  if (rows.length > 0) flush();
  const insert = db.prepare('INSERT INTO mapping_snapshot (part, rows, data) VALUES (?, ?, ?)');
  db.transaction(() => parts.forEach((p, part) => insert.run(part, p.rows, p.data)))();
  return parts.reduce((sum, p) => sum + p.rows, 0);
}

/**
 * Where the packed copy, when present, differs from the mappings table (the self-check): an
 * unreadable part, a row count, or the first differing row. Empty when there is no copy or it is exact.
 */
export function mappingSnapshotProblems(db: Db): string[] {
  const parts = readParts(db);
  if (parts.length === 0) return [];
  const cols: ReturnType<typeof columns>[] = [];
  for (let i = 0; i < parts.length; i++) {
    const c = parts[i]!.part === i ? unpack(parts[i]!) : undefined;
    if (!c) return [`part ${parts[i]!.part} is not part ${i} of a sound copy (format, byte order or row count)`];
    cols.push(c);
  }
  // The copy's rows, as text, in order; then the table's, compared one by one.
  const copy: string[] = [];
  const sink: MappingRowSink = (...row) => void copy.push(row.join(' '));
  for (const c of cols) {
    for (let i = 0; i < c.iova.length; i++) {
      const f = c.flags[i]!;
      sink(c.ioasId[i]!, c.iova[i]!, c.length[i]!, c.userAddress[i]!, (f & 1) !== 0, (f & 2) !== 0, c.pagesId[i]!, (f & SAME_BYTES) !== 0 ? c.length[i]! : c.pagesBytes[i]!, (f & 4) !== 0);
    }
  }
  const OFFSET = 1n << 63n;
  let i = 0;
  for (const r of tableRows(db)) {
    const length = r[2] + OFFSET;
    const row = [r[0], r[1] + OFFSET, length, r[3] + OFFSET, (r[4] & 1) !== 0, (r[4] & 2) !== 0, r[5], r[6] === null ? length : r[6] + OFFSET, (r[4] & 4) !== 0].join(' ');
    if (copy[i] !== row) return [`row ${i}: the copy has ${copy[i] ?? 'nothing'}, the table ${row}`];
    i++;
  }
  if (i !== copy.length) return [`the copy has ${copy.length} rows, the table ${i}`];
  return [];
}
