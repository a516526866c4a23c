/**
 * Map+unmap cost in the allocator core at 1k, 100k and 1M live mappings. The store does no I/O, so
 * the figure is the core's own cost (IOVA index, rule checks, quota accounting, undo log). Each op
 * unmaps a random live mapping and maps it back at the same IOVA: random positions, so cache misses
 * in a big index are paid honestly. Auto-allocated maps (first fit) are measured the same way.
 */
import type { Caller } from '../src/core/caller.js';
import type * as CoreModule from '../src/core/core.js';
import type { Core } from '../src/core/core.js';
import type { Store } from '../src/core/ports.js';
import { load } from './runtime.js';
import { fmt, median, type Figure } from './util.js';

const { createCore } = await load<typeof CoreModule>('core/core.js');

/** A store that keeps nothing: every write is dropped, every list is empty, one principal with room. */
const noStore = new Proxy({} as Store, {
  get(_, name: string) {
    if (name === 'transaction') return <T,>(fn: () => T) => fn();
    if (name === 'getPolicy') return () => 'device-first';
    if (name === 'getPrincipal') return () => ({ clearances: [], quotas: { maxIoas: 10, maxMappings: 10_000_000, maxPinnedBytes: 1n << 62n, maxPasids: 0 } });
    if (name.startsWith('list')) return () => [];
    return () => undefined;
  },
});

const who: Caller = { id: 'bench', role: 'user' };
const STRIDE = 0x2000n; // mappings of 0x1000 with a hole between each
const rw = { read: true, write: true };

function populated(n: number): { allocator: Core['mappings']; ioas: number } {
  const core = createCore(noStore, {
    ioasidRange: { min: 1, max: 1000 },
    now: Date.now,
    secrets: { newId: (p) => `${p}-1`, newToken: () => ({ token: '', hash: '' }), hashToken: () => '' },
  });
  const allocator = core.mappings;
  const ctx = core.contexts.create(who, {});
  const ioas = core.ioas.create(who, ctx.id).id;
  for (let i = 0; i < n; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 10_000); j++) batch.push({ iova: 0x100000n + BigInt(j) * STRIDE, length: 0x1000n, userAddress: 0n, ...rw });
    allocator.mapBatch(who, ioas, batch);
  }
  return { allocator, ioas };
}

/** ns per (unmap + map) pair at random live positions. */
function fixedCost(allocator: Core['mappings'], ioas: number, n: number, ops: number): number {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < ops; k++) {
    const iova = 0x100000n + BigInt(rnd() % n) * STRIDE;
    allocator.unmap(who, ioas, { iova, length: 0x1000n });
    allocator.map(who, ioas, { iova, length: 0x1000n, userAddress: 0n, ...rw });
  }
  return Number(process.hrtime.bigint() - t0) / ops;
}

/** ns per (auto map + unmap): the first fit is the hole below the packed run, found through the gap index. */
function autoCost(allocator: Core['mappings'], ioas: number, ops: number): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < ops; k++) {
    const m = allocator.map(who, ioas, { length: 0x1000n, userAddress: 0n, ...rw });
    allocator.unmap(who, ioas, { iova: m.iova, length: 0x1000n });
  }
  return Number(process.hrtime.bigint() - t0) / ops;
}

export function benchCore(): Figure[] {
  const sizes = [1_000, 100_000, 1_000_000];
  const fixed = new Map<number, number>();
  const auto = new Map<number, number>();
  for (const n of sizes) {
    const { allocator, ioas } = populated(n);
    // Fill the low holes so that auto-allocation has to search past the whole packed run.
    allocator.mapBatch(who, ioas, Array.from({ length: 0x100 - 1 }, (_, i) => ({ iova: BigInt(i + 1) * 0x1000n, length: 0x1000n, userAddress: 0n, ...rw })));
    fixedCost(allocator, ioas, n, 20_000); // warm-up
    fixed.set(n, median([1, 2, 3].map(() => fixedCost(allocator, ioas, n, 50_000))));
    autoCost(allocator, ioas, 5_000);
    auto.set(n, median([1, 2, 3].map(() => autoCost(allocator, ioas, 20_000))));
    console.log(`core  n=${fmt(n).padStart(9)}  fixed map+unmap ${fmt(fixed.get(n)!)} ns (${fmt(1e9 / fixed.get(n)!)} pairs/s)  auto map+unmap ${fmt(auto.get(n)!)} ns`);
  }
  const ratio = fixed.get(1_000_000)! / fixed.get(1_000)!;
  const autoRatio = auto.get(1_000_000)! / auto.get(1_000)!;
  return [
    ...sizes.map((n) => ({ name: `core fixed map+unmap @${fmt(n)}`, value: `${fmt(fixed.get(n)!)} ns` })),
    { name: 'core fixed cost ratio 1M / 1k', value: `${fmt(ratio, 2)}x`, target: '<= 2x', pass: ratio <= 2 },
    ...sizes.map((n) => ({ name: `core auto map+unmap @${fmt(n)}`, value: `${fmt(auto.get(n)!)} ns` })),
    { name: 'core auto cost ratio 1M / 1k', value: `${fmt(autoRatio, 2)}x`, target: '<= 2x', pass: autoRatio <= 2 },
  ];
}
