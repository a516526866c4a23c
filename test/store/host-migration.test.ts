import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { applyMigrations, readMigrations } from '../../src/store/migrations.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';

/**
 * Migration 0005 rebuilds the devices table (group_id loses NOT NULL) under the rows that point at
 * it: an owned device's binding, a VF's parent, a group-first device open must all survive.
 */
describe('migration 0005 (real hosts)', () => {
  function version4WithData(): Database.Database {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    applyMigrations(db, readMigrations().slice(0, 4));
    db.exec(`
      INSERT INTO groups (id, kind) VALUES (1, 'iommu'), (2, 'iommu');
      INSERT INTO devices (id, kind, group_id, parent_id, driver) VALUES
        ('0000:02:00.0', 'pci', 1, NULL, 'ice'),
        ('0000:02:01.0', 'vf', 2, '0000:02:00.0', 'vfio-pci');
      INSERT INTO principals (id, name, role, quotas, token_hash, created_at) VALUES ('p', 'p', 'user', '{}', 'h', 'now');
      INSERT INTO contexts (id, principal_id, created_at) VALUES ('c', 'p', 'now');
      INSERT INTO bindings (device_id, context_id) VALUES ('0000:02:01.0', 'c');
      INSERT INTO group_holds (group_id, context_id) VALUES (1, 'c');
      INSERT INTO device_opens (device_id, group_id, count) VALUES ('0000:02:00.0', 1, 2);
    `);
    return db;
  }

  it('keeps every row and every reference, and turns foreign keys back on', () => {
    const db = version4WithData();
    applyMigrations(db);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.prepare('SELECT id, kind, group_id, parent_id FROM devices ORDER BY id').raw().all()).toEqual([
      ['0000:02:00.0', 'pci', 1, null],
      ['0000:02:01.0', 'vf', 2, '0000:02:00.0'],
    ]);
    expect(db.prepare('SELECT device_id FROM bindings').pluck().all()).toEqual(['0000:02:01.0']);
    expect(db.prepare('SELECT count FROM device_opens').pluck().get()).toBe(2);
    // The rebuilt table still enforces its references and the new rules.
    expect(() => db.prepare("INSERT INTO devices (id, kind, group_id, driver) VALUES ('x', 'pci', 99, 'none')").run()).toThrow(/FOREIGN KEY/);
    expect(() => db.prepare("INSERT INTO devices (id, kind, group_id, driver) VALUES ('m', 'mdev', NULL, 'none')").run()).toThrow(/CHECK/);
    expect(() => db.prepare("DELETE FROM devices WHERE id = '0000:02:01.0'").run()).toThrow(/FOREIGN KEY/);
  });

  it('stores groups with their type and warnings, devices without a group, and host warnings', () => {
    const db = version4WithData();
    applyMigrations(db);
    const store = sqliteStore(db);
    expect(store.getGroup(1)).toEqual({ id: 1, kind: 'iommu', type: null, warnings: [] });
    store.insertGroup({ id: 3, kind: 'iommu', type: 'identity', warnings: [{ code: 'identity-domain', detail: 'd' }] });
    store.insertDevice({ ...store.getDevice('0000:02:00.0')!, id: '0000:00:00.2', groupId: null });
    expect(store.getGroup(3)).toEqual({ id: 3, kind: 'iommu', type: 'identity', warnings: [{ code: 'identity-domain', detail: 'd' }] });
    expect(store.getDevice('0000:00:00.2')?.groupId).toBeNull();
    expect(store.getHostWarnings()).toEqual([]);
    store.setHostWarnings([{ code: 'acs-override', detail: 'x' }]);
    expect(store.getHostWarnings()).toEqual([{ code: 'acs-override', detail: 'x' }]);
  });

  it('refuses to commit a migration that would leave a broken reference', () => {
    const db = version4WithData();
    const bad = { version: 5, name: 'bad', sql: "DELETE FROM devices WHERE id = '0000:02:00.0';" };
    expect(() => applyMigrations(db, [...readMigrations().slice(0, 4), bad])).toThrow(/broken foreign key/);
    expect(db.prepare('SELECT count(*) FROM devices').pluck().get()).toBe(2);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });
});
