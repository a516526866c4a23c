import type { MappingRowSink } from '../core/ports.js';
import { eachMappingRow } from './mapping-codec.js';
import type { Database, Statement } from 'better-sqlite3';

/** The connection (database.ts's Db, named here without importing it: database.ts closes through this module). */
type Db = Database;

/**
 * The packed copy of the `mappings` table (`mapping_snapshot`): written at a clean stop, read by the
 * next start instead of the rows. Crossing a million rows from SQLite into JavaScript costs seconds;
 * reading a few large blobs and decoding typed-array columns costs a fraction of that.
 *
 * The copy is a cache and never a second source of truth. The stop that writes it also creates
 * {@link TRIGGERS} that empty it in the same transaction as any change to the mappings table (by
 * ioasd or any other SQLite client), so a copy that is present with its triggers equals the table.
 * ioasd's own first change to the table after a start removes the copy and the triggers in that
 * change's transaction ({@link MappingCopyGuard}), so the triggers cost nothing while it runs. A start
 * trusts the copy only with all its triggers there (a migration that rebuilds the table drops them)
 * and checks it (format, byte order, row count), else reads the table; the self-check compares it
 * row by row.
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

type Columns = ReturnType<typeof columns>;

/** Empty the copy with any change to the mappings table: present exactly while a copy is armed. */
const TRIGGERS = ['insert', 'update', 'delete'].map((op) => ({
  name: `mapping_snapshot_stale_on_${op}`,
  sql: `CREATE TRIGGER IF NOT EXISTS mapping_snapshot_stale_on_${op} AFTER ${op.toUpperCase()} ON mappings
    WHEN EXISTS (SELECT 1 FROM mapping_snapshot) BEGIN DELETE FROM mapping_snapshot; END`,
}));

/** 1 when a copy may be there: all of its triggers are (none is without a copy written by a stop). */
const ARMED = `SELECT count(*) = ${TRIGGERS.length} FROM sqlite_master WHERE type = 'trigger' AND name IN (${TRIGGERS.map((t) => `'${t.name}'`).join(', ')})`;

function armed(db: Db): boolean {
  return db.prepare(ARMED).pluck().get() === 1;
}

/** Removes the copy and its triggers (inside the caller's transaction, if any). */
function disarm(db: Db): void {
  db.exec('DELETE FROM mapping_snapshot');
  for (const t of TRIGGERS) db.exec(`DROP TRIGGER IF EXISTS ${t.name}`);
}

/**
 * ioasd's side of keeping the copy exact: its first write to the mappings table after a start
 * removes the copy and its triggers in the same transaction, later writes pay one boolean test. A
 * rolled-back transaction may have put them back, so the store drops what it knows then ({@link
 * Cache}) and the next write looks again.
 */
export class MappingCopyGuard {
  private isArmed: boolean | undefined;
  /** Prepared once: every rolled-back change (a refusal, a dry run) makes the next write ask again. */
  private readonly armedQuery: Statement;

  constructor(private readonly db: Db) {
    this.armedQuery = db.prepare(ARMED).pluck();
  }

  beforeWrite(): void {
    this.isArmed ??= this.armedQuery.get() === 1;
    if (!this.isArmed) return;
    disarm(this.db);
    this.isArmed = false;
  }

  dropCache(): void {
    this.isArmed = undefined;
  }
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

/** The columns of one part being filled, `n` rows long. */
function newPart(n: number): { data: Buffer; cols: Columns } {
  const data = Buffer.alloc(HEADER + ROW_BYTES * n);
  data.write(MAGIC, 0, 'latin1');
  const head = new Uint32Array(data.buffer, data.byteOffset + 8, 2);
  head[0] = n;
  head[1] = BOM;
  return { data, cols: columns(data.buffer as ArrayBuffer, data.byteOffset, n) };
}

/** Row k of a part's columns to `sink`. */
function emit(c: Columns, k: number, sink: MappingRowSink): void {
  const f = c.flags[k]!;
  const len = c.length[k]!;
  sink(c.ioasId[k]!, c.iova[k]!, len, c.userAddress[k]!, (f & 1) !== 0, (f & 2) !== 0, c.pagesId[k]!, (f & SAME_BYTES) !== 0 ? len : c.pagesBytes[k]!, (f & 4) !== 0);
}

/** Every row of the parts' columns to `sink`, in order. */
function eachPacked(parts: readonly Columns[], sink: MappingRowSink): void {
  for (const c of parts) for (let k = 0; k < c.iova.length; k++) emit(c, k, sink);
}

interface Part {
  part: number;
  rows: number;
  data: Buffer;
}

/** A part's columns when its header is sound and of this host's byte order; otherwise undefined. */
function unpack(p: Part): Columns | undefined {
  const { data } = p;
  if (data.length < HEADER || data.toString('latin1', 0, 8) !== MAGIC) return undefined;
  // Typed arrays need their element alignment: a blob that is not 8-aligned is copied once.
  const bytes = data.byteOffset % 8 === 0 ? data : Buffer.from(data);
  const head = new Uint32Array(bytes.buffer, bytes.byteOffset + 8, 2);
  const n = head[0]!;
  if (head[1] !== BOM || n !== p.rows || bytes.length !== HEADER + ROW_BYTES * n) return undefined;
  return columns(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
}

/**
 * The copy's parts, decoded: absent (undefined), sound (numbered 0.., each with a sound header of
 * this host's byte order), or what is wrong with it.
 */
function readParts(db: Db): Columns[] | string | undefined {
  const parts = db.prepare('SELECT part, rows, data FROM mapping_snapshot ORDER BY part').all() as Part[];
  if (parts.length === 0) return undefined;
  const out: Columns[] = [];
  for (let i = 0; i < parts.length; i++) {
    const cols = parts[i]!.part === i ? unpack(parts[i]!) : undefined;
    if (!cols) return `part ${parts[i]!.part} is not part ${i} of a sound copy (format, byte order or row count)`;
    out.push(cols);
  }
  return out;
}

/** The parts when the copy is armed (its triggers are there), sound, and counts the table's rows. */
function usableParts(db: Db): Columns[] | undefined {
  if (!armed(db)) return undefined;
  const parts = readParts(db);
  if (parts === undefined || typeof parts === 'string') return undefined;
  const total = parts.reduce((sum, c) => sum + c.iova.length, 0);
  return total === (db.prepare('SELECT count(*) FROM mappings').pluck().get() as number) ? parts : undefined;
}

/**
 * Calls `sink` for every mapping from the packed copy and answers true; answers false (calling
 * nothing) when there is no usable copy, and the caller reads the table.
 */
export function readMappingSnapshot(db: Db, sink: MappingRowSink): boolean {
  const parts = usableParts(db);
  if (!parts) return false;
  eachPacked(parts, sink);
  return true;
}

/**
 * Writes the packed copy of the mappings table with its triggers, unless a usable one is there
 * already (the table has not changed since it was written). A copy that is not usable is replaced;
 * an empty table leaves none. Called at a clean stop, when nothing else writes; answers the rows packed.
 */
export function writeMappingSnapshot(db: Db): number {
  if (usableParts(db)) return 0;
  const total = db.prepare('SELECT count(*) FROM mappings').pluck().get() as number;
  // The rows are read whole before the first write: a connection runs no statement while another iterates.
  const parts: { rows: number; data: Buffer }[] = [];
  let part = newPart(Math.min(PART_ROWS, total));
  let at = 0;
  eachMappingRow(db, (ioasId, iova, length, userAddress, read, write, pagesId, pagesBytes, pagesWritable) => {
    if (at === part.cols.iova.length) {
      parts.push({ rows: at, data: part.data });
      part = newPart(Math.min(PART_ROWS, total - parts.length * PART_ROWS));
      at = 0;
    }
    // The column is a u32: a larger id (the allocator's range allows it) must not wrap onto another space.
    if (ioasId > 0xffffffff) throw new Error(`ioas ${ioasId} does not fit the packed copy's 32-bit ioas column`);
    const c = part.cols;
    c.ioasId[at] = ioasId;
    c.iova[at] = iova;
    c.length[at] = length;
    c.userAddress[at] = userAddress;
    c.pagesId[at] = pagesId;
    c.flags[at] = (read ? 1 : 0) | (write ? 2 : 0) | (pagesWritable ? 4 : 0) | (pagesBytes === length ? SAME_BYTES : 0);
    if (pagesBytes !== length) c.pagesBytes[at] = pagesBytes;
    at++;
  });
  if (at > 0) parts.push({ rows: at, data: part.data });
  const insert = db.prepare('INSERT INTO mapping_snapshot (part, rows, data) VALUES (?, ?, ?)');
  db.transaction(() => {
    disarm(db);
    if (parts.length === 0) return;
    parts.forEach((p, i) => insert.run(i, p.rows, p.data));
    for (const t of TRIGGERS) db.exec(t.sql);
  })();
  return total;
}

/**
 * Where the packed copy, when present, differs from the mappings table (the self-check): an
 * unreadable part, a row count, or the first differing row. Empty when there is no copy or it is exact.
 */
export function mappingSnapshotProblems(db: Db): string[] {
  const cols = readParts(db);
  if (cols === undefined) return [];
  if (typeof cols === 'string') return [cols];
  if (!armed(db)) return ['a copy is there without its triggers: it is not kept exact, and a start does not read it'];
  // The copy's rows and the table's, side by side, as text (one row at a time: no copy of either
  // is held); the first difference is named.
  let part = 0;
  let k = 0;
  let copied: string | undefined;
  const take = (...row: unknown[]) => void (copied = row.join(' '));
  const nextCopied = (): string | undefined => {
    while (part < cols.length && k === cols[part]!.iova.length) [part, k] = [part + 1, 0];
    if (part === cols.length) return undefined;
    emit(cols[part]!, k++, take);
    return copied;
  };
  let i = 0;
  let problem: string | undefined;
  eachMappingRow(db, (...r) => {
    if (problem !== undefined) return;
    const row = r.join(' ');
    const mine = nextCopied();
    if (mine !== row) problem = mine === undefined ? `the table has more rows than the copy's ${i}` : `row ${i}: the copy has ${mine}, the table ${row}`;
    i++;
  });
  if (problem !== undefined) return [problem];
  const total = cols.reduce((sum, c) => sum + c.iova.length, 0);
  if (i !== total) return [`the copy has ${total} rows, the table ${i}`];
  return [];
}
