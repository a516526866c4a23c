import type { AllocatorDeps } from '../../src/core/allocator.js';
import type { Quotas } from '../../src/core/model.js';

/**
 * The allocator's ports with nothing behind them: every write is dropped, the start-up load is empty
 * and a transaction just runs its function. With it the measured cost is the core's own (IOVA index,
 * rule checks, quota accounting, undo log, audit call).
 */
export const noStore: AllocatorDeps['store'] = {
  transaction: (fn) => fn(),
  insertContext() {},
  setContextLease() {},
  deleteContext() {},
  insertIoas() {},
  setAllowedRanges() {},
  deleteIoas() {},
  insertMapping() {},
  deleteMapping() {},
  loadAllocator: () => ({ contexts: [], ioas: [], mappings: [] }),
  audit() {},
  listAudit: () => [],
};

/** Quotas that never stop a benchmark. */
export const BENCH_QUOTAS: Quotas = { maxIoas: 16, maxMappings: 2_000_000, maxPinnedBytes: (1n << 64n) - 1n, maxPasids: 0 };

/** Allocator dependencies like bootstrap() in src/app.ts, minus I/O. */
export function benchDeps(store: AllocatorDeps['store'] = noStore): AllocatorDeps {
  let n = 0;
  return {
    store,
    ioasidRange: { min: 1, max: 2 ** 31 - 1 },
    now: Date.now,
    newId: (prefix) => `${prefix}-${++n}`,
    policy: () => 'device-first',
    quotasOf: () => BENCH_QUOTAS,
  };
}
