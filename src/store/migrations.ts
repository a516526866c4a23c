import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

type Db = Database.Database;

/** migrations/ at the package root; the same depth from src/store and dist/store. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: string;
}

const FILE = /^(\d{4})_([a-z0-9_-]+)\.sql$/;

/** Reads numbered migration files (`0001_name.sql`) in version order. */
export function readMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: FILE.exec(file) }))
    .filter((m): m is { file: string; match: RegExpExecArray } => m.match !== null)
    .map(({ file, match }) => ({ version: Number(match[1]), name: match[2]!, sql: readFileSync(`${dir}/${file}`, 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, ... without gaps; found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

/**
 * Applies every migration not yet recorded, each in its own transaction together with its record,
 * and returns the full list of applied migrations. A database newer than this program is refused.
 */
/** The database was written by a newer ioasd: this one must not touch it. */
export class DatabaseTooNewError extends Error {
  constructor(
    readonly version: number,
    readonly known: number,
  ) {
    super(`database schema version ${version} is newer than this ioasd (it knows up to ${known}); run the newer ioasd, or restore a backup made before the upgrade; the database was not changed`);
    this.name = 'DatabaseTooNewError';
  }
}

export function applyMigrations(db: Db, migrations: Migration[] = readMigrations()): AppliedMigration[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  ) STRICT`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  const newest = Math.max(0, ...applied);
  if (newest > migrations.length) {
    throw new DatabaseTooNewError(newest, migrations.length);
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  // A migration may rebuild a table (SQLite's documented create-copy-drop-rename): that needs foreign
  // keys off, and PRAGMA foreign_key_check inside the transaction instead (the pragma is a no-op
  // within one, hence outside).
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) === 1;
  if (foreignKeys) db.pragma('foreign_keys = OFF');
  try {
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      db.transaction(() => {
        db.exec(m.sql);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`migration ${m.version}_${m.name} leaves ${broken.length} broken foreign key(s)`);
        record.run(m.version, m.name, new Date().toISOString());
      })();
    }
  } finally {
    if (foreignKeys) db.pragma('foreign_keys = ON');
  }
  return (db.prepare('SELECT version, name, applied_at AS appliedAt FROM schema_migrations ORDER BY version').all() as AppliedMigration[]);
}
