/**
 * What the baseline servers share: a database opened as ioasd opens its own (src/store/database.ts:
 * exclusive lock, WAL, synchronous=FULL, foreign keys), a mapping-like table, and the start line
 * bench/processes.ts waits for. Baselines are bare Fastify: no logger, no schemas, no plugins.
 */
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';

export function openLikeIoasd(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  return db;
}

/** The database file the orchestrator chose for this baseline (a temporary directory). */
export function openBenchDb(): Database.Database {
  const path = process.env.BENCH_DB;
  if (!path) throw new Error('BENCH_DB is not set');
  const db = openLikeIoasd(path);
  // A mapping row as ioasd stores one: u64 values offset by 2^63 into SQLite's signed integers.
  db.exec(`CREATE TABLE IF NOT EXISTS mappings (
    id INTEGER PRIMARY KEY, ioas_id INTEGER NOT NULL, iova INTEGER NOT NULL, length INTEGER NOT NULL,
    user_address INTEGER NOT NULL, flags INTEGER NOT NULL)`);
  return db;
}

const OFFSET = 1n << 63n;
export const hex = (v: bigint) => `0x${v.toString(16)}`;

export interface MapRequest {
  iova?: string;
  length: string;
  userAddress: string;
  read?: boolean;
  write?: boolean;
}

/** A mapping-like row from a request body: the values a real insert needs, and the answer's fields. */
export class Rows {
  private next = 0x100000n;
  private readonly insert: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO mappings (ioas_id, iova, length, user_address, flags) VALUES (1, ?, ?, ?, ?)');
  }

  /** Inserts one row (IOVAs handed out in order) and returns its wire form. */
  add(m: MapRequest): { iova: string; length: string; userAddress: string; read: boolean; write: boolean } {
    const length = BigInt(m.length);
    const userAddress = BigInt(m.userAddress);
    const iova = m.iova === undefined ? this.next : BigInt(m.iova);
    this.next = iova + length;
    const read = m.read ?? true;
    const write = m.write ?? true;
    this.insert.run(iova - OFFSET, length - OFFSET, userAddress - OFFSET, (read ? 1 : 0) | (write ? 2 : 0));
    return { iova: hex(iova), length: hex(length), userAddress: hex(userAddress), read, write };
  }
}

/** Listens on 127.0.0.1 and a free port, says where, and closes (database included) on SIGTERM. */
export async function serve(app: FastifyInstance, db?: Database.Database): Promise<void> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`listening http://127.0.0.1:${port}`);
  process.once('SIGTERM', () => {
    void app.close().then(() => {
      db?.close();
      process.exit(0);
    });
  });
}
