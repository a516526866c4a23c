import type { Caller } from '../../src/core/caller.js';
import { checkInvariants, type CheckReport } from '../../src/core/check.js';
import { createCore, type Core } from '../../src/core/core.js';
import { IoasdError } from '../../src/core/errors.js';
import type { Domain, PolicyName, Quotas } from '../../src/core/model.js';
import type { Store } from '../../src/core/ports.js';
import { DEFAULT_QUOTAS } from '../../src/core/principals.js';
import { U64_MAX } from '../../src/core/u64.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { nodeSecrets } from '../../src/store/secrets.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';
import { failNextSqliteCommit } from '../fail-commit.js';
import { memoryStore } from './memory-store.js';

export const P = 0x1000n; // PAGE_SIZE, as in the kernel selftests
export const MOCK_PAGE_SIZE = P / 2n;
export const MOCK_APERTURE_START = 1n << 24n;
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
export { U64_MAX };

/** The selftest's mock domain: 2 KiB pages, aperture [1<<24, (1<<31)-1]. */
export const MOCK_DOMAIN: Domain = {
  key: 'mock',
  minPageSize: MOCK_PAGE_SIZE,
  aperture: { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST },
  reserved: [],
};

/** A type1 container's IOMMU model like the demo iommu: 4 KiB pages, 48-bit aperture, MSI window reserved. */
export const X86_MODEL: Domain = {
  key: 'container',
  minPageSize: P,
  aperture: { start: 0n, last: (1n << 48n) - 1n },
  reserved: [{ start: 0xfee00000n, last: 0xfeefffffn }],
};

export interface CoreFixture {
  /** The SQLite database, or null on the in-memory fake of the ports. */
  db: Db | null;
  store: Store;
  core: Core;
  alice: Caller;
  bob: Caller;
  clock: { now: number };
  /** Sets a principal's quotas (through the core, as an admin's PATCH does). */
  quotas: { set(principalId: string, quotas: Quotas): void };
  /** Builds a new core over the same store: a restart. */
  restart(): Core;
  /** Every invariant over memory and the store (as GET /v1/system/check). */
  check(): CheckReport;
}

export type StoreKind = 'sqlite' | 'memory';

/**
 * The core on a store of its own: SQLite (a file at `path`, or in memory), or the in-memory fake of
 * the ports (test/core/memory-store.ts), which proves the ports are all the core needs.
 */
export function coreFixture(policy: PolicyName = 'device-first', path = ':memory:', ioasidRange = { min: 1, max: 2 ** 31 - 1 }, kind: StoreKind = 'sqlite'): CoreFixture {
  const db = kind === 'sqlite' ? openDatabase(path).db : null;
  const store = db ? sqliteStore(db) : memoryStore();
  store.setPolicy(policy);
  const clock = { now: Date.UTC(2026, 10, 24) };
  for (const id of ['alice', 'bob']) {
    if (!store.getPrincipal(id)) {
      store.insertPrincipal({ id, name: id, role: 'user', clearances: [], quotas: DEFAULT_QUOTAS, createdAt: 'now', tokenHash: `hash-${id}` });
    }
  }
  let n = 0;
  const secrets = { ...nodeSecrets, newId: (prefix: string) => `${prefix}-${++n}` };
  const make = () => createCore(store, { ioasidRange, now: () => clock.now, secrets });
  const fixture: CoreFixture = {
    db,
    store,
    core: make(),
    alice: { id: 'alice', role: 'user' },
    bob: { id: 'bob', role: 'user' },
    clock,
    quotas: { set: (id, quotas) => void fixture.core.principals.update(id, { quotas }, null) },
    restart() {
      fixture.core = make();
      return fixture.core;
    },
    check: () => checkInvariants(fixture.core, make, store),
  };
  return fixture;
}

/** The errno a call refuses with, or 'ok'. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof IoasdError) return err.errno;
    throw err;
  }
}

/**
 * Makes the next commit fail the way a real one can: on SQLite, a foreign key deferred to COMMIT
 * that does not hold (the commit is refused and the transaction stays open); on the fake, its
 * injected failure.
 */
export function failNextCommit(f: CoreFixture): void {
  if (f.db) failNextSqliteCommit(f.store, f.db);
  else (f.store as ReturnType<typeof memoryStore>).failNextCommit(new Error('disk full (injected)'));
}
