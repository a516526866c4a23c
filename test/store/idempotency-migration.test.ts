import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { applyMigrations, readMigrations } from '../../src/store/migrations.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';

/**
 * Migration 0007 rebuilds the idempotency table as a rowid table (records in arrival order) with a
 * unique index on (principal_id, key): every stored answer survives, and the table keeps refusing a
 * second record for the same key while a retry's upsert still replaces it.
 */
describe('migration 0007 (idempotency records by arrival)', () => {
  function version6WithRecords(): Database.Database {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    applyMigrations(db, readMigrations().slice(0, 6));
    db.exec(`
      INSERT INTO idempotency (principal_id, key, digest, status, body, created_at) VALUES
        ('p', 'k-2', 'd2', 201, '{"id":"ctx-2"}', 20),
        ('p', 'k-1', 'd1', 409, '{"errno":"EBUSY"}', 10),
        ('q', 'k-1', 'd3', 204, NULL, 30);
    `);
    return db;
  }

  it('keeps every record, in the order they were stored, and still finds them by principal and key', () => {
    const db = version6WithRecords();
    applyMigrations(db);
    expect(db.prepare('SELECT principal_id, key, digest, status, body, created_at FROM idempotency ORDER BY rowid').raw().all()).toEqual([
      ['p', 'k-1', 'd1', 409, '{"errno":"EBUSY"}', 10],
      ['p', 'k-2', 'd2', 201, '{"id":"ctx-2"}', 20],
      ['q', 'k-1', 'd3', 204, null, 30],
    ]);
    const store = sqliteStore(db);
    expect(store.getIdempotency('q', 'k-1')).toEqual({ principalId: 'q', key: 'k-1', digest: 'd3', status: 204, body: null, createdAt: 30 });
    expect(store.getIdempotency('q', 'k-2')).toBeUndefined();
    // The upsert replaces a record in place; a plain second insert of the same key is refused.
    store.putIdempotency({ principalId: 'p', key: 'k-1', digest: 'd4', status: 200, body: '{}', createdAt: 40 });
    expect(store.getIdempotency('p', 'k-1')).toMatchObject({ digest: 'd4', status: 200, createdAt: 40 });
    expect(db.prepare('SELECT count(*) FROM idempotency').pluck().get()).toBe(3);
    expect(() => db.prepare("INSERT INTO idempotency (principal_id, key, digest, status, created_at) VALUES ('p', 'k-2', 'x', 200, 1)").run()).toThrow(/UNIQUE/);
    // Expiry by age still works, by its index.
    expect(store.expireIdempotency(25)).toBe(1);
    expect(db.prepare("EXPLAIN QUERY PLAN DELETE FROM idempotency WHERE created_at < 1").all()).toEqual(
      expect.arrayContaining([expect.objectContaining({ detail: expect.stringContaining('idempotency_by_age') })]),
    );
  });
});
