import type { Db } from '../src/store/database.js';

/**
 * Makes the store's next COMMIT fail the way a real one can: a foreign key deferred to COMMIT
 * (`PRAGMA defer_foreign_keys`) that does not hold, so SQLite refuses the commit and keeps the
 * transaction open. Used by the group-commit tests of the core and of the HTTP layer.
 */
export function failNextSqliteCommit(store: { commit(): void }, db: Db): void {
  const real = store.commit;
  store.commit = () => {
    store.commit = real;
    db.pragma('defer_foreign_keys = ON');
    db.prepare("INSERT INTO ioas (id, context_id, created_at) VALUES (999999, 'no-such-context', 'x')").run();
    real();
  };
}
