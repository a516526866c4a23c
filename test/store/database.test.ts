import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseLockedError, openDatabase } from '../../src/store/database.js';
import { applyMigrations, readMigrations } from '../../src/store/migrations.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ioasd-db-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('migrations', () => {
  it('apply on an empty database and are recorded once each', () => {
    const { db, migrations } = openDatabase(join(dir, 'a.db'));
    expect(migrations.map((m) => m.version)).toEqual(readMigrations().map((m) => m.version));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['schema_migrations', 'groups', 'devices', 'principals', 'audit', 'settings']));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    db.close();
  });

  it('keep the data of an existing database and apply only what is new', () => {
    const path = join(dir, 'b.db');
    const first = openDatabase(path);
    first.db.prepare("INSERT INTO settings (key, value) VALUES ('k', 'v')").run();
    const appliedAt = first.migrations.map((m) => m.appliedAt);
    first.db.close();

    const second = openDatabase(path);
    expect(second.migrations.map((m) => m.appliedAt)).toEqual(appliedAt);
    expect(second.db.prepare("SELECT value FROM settings WHERE key = 'k'").pluck().get()).toBe('v');
    second.db.close();
  });

  it('apply a later migration to a database made by an earlier version', () => {
    const db = new Database(':memory:');
    const all = readMigrations();
    applyMigrations(db, all.slice(0, 1));
    const extra = { version: all.length + 1, name: 'extra', sql: 'CREATE TABLE extra (x INTEGER) STRICT;' };
    const applied = applyMigrations(db, [...all, extra]);
    expect(applied.map((m) => m.version)).toEqual([...all.map((m) => m.version), extra.version]);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").pluck().get()).toBe(1);
  });

  it('roll back a failing migration whole, record and all', () => {
    const db = new Database(':memory:');
    const bad = { version: 1, name: 'bad', sql: 'CREATE TABLE t1 (x); CREATE TABLE t1 (x);' };
    expect(() => applyMigrations(db, [bad])).toThrow();
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 't1'").pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM schema_migrations').pluck().get()).toBe(0);
  });

  it('refuse a database newer than the program', () => {
    const db = new Database(':memory:');
    applyMigrations(db);
    db.prepare("INSERT INTO schema_migrations VALUES (999, 'future', 'x')").run();
    expect(() => applyMigrations(db)).toThrow(/newer than this ioasd/);
  });

  it('refuse gaps in the numbering', () => {
    const mdir = join(dir, 'migrations');
    mkdirSync(mdir);
    writeFileSync(join(mdir, '0001_a.sql'), 'SELECT 1;');
    writeFileSync(join(mdir, '0003_c.sql'), 'SELECT 1;');
    expect(() => readMigrations(mdir)).toThrow(/without gaps/);
  });
});

describe('single-server lock', () => {
  it('refuses a second open of the same file while the first is open, and allows it after close', () => {
    const path = join(dir, 'c.db');
    const first = openDatabase(path);
    expect(() => openDatabase(path)).toThrow(DatabaseLockedError);
    first.db.close();
    const again = openDatabase(path);
    again.db.close();
  });

  it('is held against another process, and released when that process is killed', async () => {
    const path = join(dir, 'd.db');
    // A child process opens the database and holds it until killed with SIGKILL (no clean-up runs).
    const holder = spawn(
      process.execPath,
      ['--input-type=module', '-e', `
        import Database from 'better-sqlite3';
        const db = new Database(${JSON.stringify(path)});
        db.pragma('locking_mode = EXCLUSIVE'); db.pragma('journal_mode = WAL'); db.exec('BEGIN EXCLUSIVE; COMMIT');
        process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (b: Buffer) => b.toString().includes('locked') && resolve());
      holder.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    expect(() => openDatabase(path)).toThrow(/in use by another ioasd server/);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));
    const after = openDatabase(path);
    after.db.close();
  });
});

describe('store caches', () => {
  it('never keep a principal or policy that a failed transaction wrote', async () => {
    const { sqliteStore } = await import('../../src/store/sqlite-store.js');
    const { DEFAULT_QUOTAS } = await import('../../src/core/principals.js');
    const { db } = openDatabase(':memory:');
    const store = sqliteStore(db);
    store.insertPrincipal({ id: 'p1', name: 'one', role: 'user', clearances: [], quotas: DEFAULT_QUOTAS, createdAt: 'now', tokenHash: 'h1' });
    store.setPolicy('device-first');
    expect(store.findPrincipalByTokenHash('h1')?.name).toBe('one');
    expect(() =>
      store.transaction(() => {
        store.updatePrincipal({ ...store.getPrincipal('p1')!, name: 'renamed' });
        store.setTokenHash('p1', 'h2');
        store.setPolicy('group-first');
        expect(store.getPrincipal('p1')?.name).toBe('renamed'); // read inside: the cache fills with it
        expect(store.getPolicy()).toBe('group-first');
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(store.getPrincipal('p1')?.name).toBe('one');
    expect(store.findPrincipalByTokenHash('h1')?.id).toBe('p1');
    expect(store.findPrincipalByTokenHash('h2')).toBeUndefined();
    expect(store.getPolicy()).toBe('device-first');
    db.close();
  });
});
