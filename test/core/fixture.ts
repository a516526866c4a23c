import { Allocator, type Caller } from '../../src/core/allocator.js';
import { IoasdError } from '../../src/core/errors.js';
import type { Domain, PolicyName, Quotas } from '../../src/core/model.js';
import { DEFAULT_QUOTAS } from '../../src/core/principals.js';
import { U64_MAX } from '../../src/core/u64.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

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
  db: Db;
  store: SqliteStore;
  allocator: Allocator;
  alice: Caller;
  bob: Caller;
  clock: { now: number };
  policy: { value: PolicyName };
  quotas: Map<string, Quotas>;
  /** Builds a new Allocator over the same database: a restart. */
  restart(): Allocator;
}

export function coreFixture(policy: PolicyName = 'device-first', path = ':memory:', ioasidRange = { min: 1, max: 2 ** 31 - 1 }): CoreFixture {
  const { db } = openDatabase(path);
  const store = new SqliteStore(db);
  const clock = { now: Date.UTC(2026, 10, 24) };
  const policyRef = { value: policy };
  const quotas = new Map<string, Quotas>();
  for (const id of ['alice', 'bob']) {
    if (!store.getPrincipal(id)) {
      store.insertPrincipal({ id, name: id, role: 'user', clearances: [], quotas: DEFAULT_QUOTAS, createdAt: 'now', tokenHash: `hash-${id}` });
    }
  }
  let n = 0;
  const make = () =>
    new Allocator({
      store,
      ioasidRange,
      now: () => clock.now,
      newId: (prefix) => `${prefix}-${++n}`,
      policy: () => policyRef.value,
      quotasOf: (id) => quotas.get(id) ?? DEFAULT_QUOTAS,
    });
  const fixture: CoreFixture = {
    db,
    store,
    allocator: make(),
    alice: { id: 'alice', role: 'user' },
    bob: { id: 'bob', role: 'user' },
    clock,
    policy: policyRef,
    quotas,
    restart() {
      fixture.allocator = make();
      return fixture.allocator;
    },
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
