import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Db } from './database.js';
import { MEMORY } from './database.js';

/** A consistent copy of the database in a file of its own; `done()` removes it. */
export interface BackupFile {
  path: string;
  done(): void;
}

/**
 * Writes a consistent, compacted image of the live database (SQLite's `VACUUM INTO`) into a new
 * directory beside the database (same filesystem; the system's temporary directory for an in-memory
 * database). The live server holds SQLite's exclusive lock, so no other process can take this copy:
 * it must come through the server's own connection. It runs outside any transaction: the caller
 * commits what is open first.
 */
export function backupDatabase(db: Db): BackupFile {
  const where = db.name === MEMORY ? tmpdir() : dirname(db.name);
  const dir = mkdtempSync(join(where, '.ioasd-backup-'));
  const path = join(dir, 'ioasd.db');
  try {
    db.prepare('VACUUM INTO ?').run(path);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}
