import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeMappingSnapshot } from './mapping-snapshot.js';
import { applyMigrations, type AppliedMigration } from './migrations.js';

export type Db = Database.Database;

export const MEMORY = ':memory:';

/** Raised when another live process holds the database: ownership state must have one writer. */
export class DatabaseLockedError extends Error {
  constructor(readonly path: string) {
    super(`database ${path} is in use by another ioasd server; stop it first (two servers would corrupt ownership)`);
    this.name = 'DatabaseLockedError';
  }
}

export interface OpenedDatabase {
  db: Db;
  migrations: AppliedMigration[];
}

/**
 * Opens (creating when needed) the database, takes the single-server lock and applies migrations.
 *
 * The lock is SQLite's own: in EXCLUSIVE locking mode the connection keeps its file lock until it
 * closes, and the operating system drops it when the process dies. So a second server is refused
 * while the first lives, and a restart after kill -9 is never blocked by a stale PID file.
 */
export function openDatabase(path: string): OpenedDatabase {
  if (path !== MEMORY) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 250');
    if (path !== MEMORY) takeLock(db, path);
    // FULL: a commit is on disk before the answer goes out, so an acknowledged change survives
    // power loss as well as a crash of the process.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const migrations = applyMigrations(db);
    return { db, migrations };
  } catch (err) {
    db.close();
    throw err;
  }
}

function takeLock(db: Db, path: string): void {
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // Switching to WAL already needs the lock, so it belongs inside the try.
    db.pragma('journal_mode = WAL');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseLockedError(path);
    throw err;
  }
}

/**
 * A clean stop: writes the packed copy of the mappings table the next start reads instead of the
 * rows (unless it is there already), then closes. Answers the rows packed (0: nothing written), or
 * why the copy could not be written: then nothing of it was kept (one transaction), the next start
 * reads the rows, and the database is closed all the same.
 */
export function closeDatabase(db: Db): { packed: number; error?: unknown } {
  try {
    return { packed: db.memory || !db.open ? 0 : writeMappingSnapshot(db) };
  } catch (error) {
    return { packed: 0, error };
  } finally {
    if (db.open) db.close();
  }
}
