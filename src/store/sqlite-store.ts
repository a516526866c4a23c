import type { Store } from '../core/ports.js';
import { auditStore } from './audit-store.js';
import type { Cache } from './cache.js';
import { bindingStore } from './binding-store.js';
import { contextStore } from './context-store.js';
import type { Db } from './database.js';
import { eventStore } from './event-store.js';
import { groupHoldStore } from './group-hold-store.js';
import { hwptStore } from './hwpt-store.js';
import { idempotencyStore } from './idempotency-store.js';
import { inventoryStore } from './inventory-store.js';
import { ioasStore } from './ioas-store.js';
import { principalStore } from './principal-store.js';
import { systemStore } from './system-store.js';

/** Every port of the core on one better-sqlite3 connection. */
export type SqliteStore = Store;

/**
 * The core's ports on SQLite, one module per port (each with the codecs of its tables), joined with
 * one transaction wrapper. Statements are prepared once; all calls are synchronous.
 */
export function sqliteStore(db: Db): SqliteStore {
  const principals = principalStore(db);
  const system = systemStore(db);
  const ioas = ioasStore(db);
  const caches: Cache[] = [system, ioas];
  // better-sqlite3 builds the wrapper (and its savepoint variants for nesting) once, not per call.
  // Inside an open transaction (group commit's begin), the wrapper runs as a savepoint.
  const runInTransaction = db.transaction((fn: () => unknown) => fn());
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const { dropCache: _system, ...systemPort } = system;
  const { dropCache: _ioas, ...ioasPort } = ioas;
  return {
    ...inventoryStore(db),
    ...principals,
    ...systemPort,
    ...auditStore(db),
    ...contextStore(db),
    ...ioasPort,
    ...hwptStore(db),
    ...groupHoldStore(db),
    ...bindingStore(db),
    ...eventStore(db),
    ...idempotencyStore(db),
    transaction<T>(fn: () => T): T {
      try {
        return runInTransaction(fn) as T;
      } catch (err) {
        for (const c of caches) c.dropCache();
        throw err;
      }
    },
    begin() {
      begin.run();
    },
    commit() {
      try {
        commit.run();
      } catch (err) {
        // SQLite keeps the transaction open after some failed commits (busy, deferred foreign keys)
        // and rolls it back itself after others (I/O errors, disk full): either way, none of it stays.
        if (db.inTransaction) rollback.run();
        for (const c of caches) c.dropCache();
        throw err;
      }
    },
  };
}
