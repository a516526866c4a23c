/**
 * The allocator core at 1k, 100k and 1M live mappings. The store does no I/O, so the figures are the
 * core's own cost (IOVA index, rule checks, quota accounting, undo log).
 *
 * Fixed positions: each op unmaps a random live mapping and maps it back at the same IOVA, so cache
 * misses in a big index are paid honestly. The baseline is the `sorted-btree` package (a B+tree of
 * number keys, the usual choice for an ordered map in JS) doing the least any index must do for the
 * same pair: remove the key, check that nothing below the range's end reaches into it, insert it back,
 * at the same random positions. All sizes are built first; then each round runs every side of every
 * size once, in an order reversed each round, and the figures are medians of rounds.
 *
 * A third side, for the record: the four IOVA index calls the allocator makes for such a pair (find
 * the mapping, remove it, check the overlap, insert it), alone, at the same positions, so the table
 * shows how much of the pair is the index and how much the allocator path around it.
 *
 * Memory: heap (plus ArrayBuffer memory, where the IOVA index keeps its rows) after a full GC, before
 * and after building 1M mappings, divided by 1M. Needs node --expose-gc (npm run bench passes it).
 *
 * Auto-allocated maps (first fit through the gap index) are measured against their own cost at 1k.
 */
import sortedBtree from 'sorted-btree';
import type { Caller } from '../src/core/caller.js';
import type * as CoreModule from '../src/core/core.js';
import type { Core } from '../src/core/core.js';
import type { IovaTree } from '../src/core/iova-tree.js';
import type { Mapping } from '../src/core/model.js';
import type { Store } from '../src/core/ports.js';
import { load } from './runtime.js';
import { settings } from './settings.js';
import { fmt, median, type Figure } from './util.js';

const { createCore } = await load<typeof CoreModule>('core/core.js');
// A CommonJS package: its class is the `default` property of module.exports.
const BTree = sortedBtree.default;
type BTree<K, V> = InstanceType<typeof BTree<K, V>>;

/** A store that keeps nothing: every write is dropped, every list is empty, one principal with room. */
const quotas = { maxIoas: 10, maxMappings: 10_000_000, maxPinnedBytes: 1n << 62n, maxPasids: 0, maxContexts: 10 };
function noop(name: string): unknown {
  if (name === 'transaction') return <T,>(fn: () => T) => fn();
  if (name === 'getPolicy') return () => 'device-first';
  if (name === 'getPrincipal') return () => ({ clearances: [], quotas });
  // The core keeps principals in memory, loaded from this list at start.
  if (name === 'listPrincipals') return () => [{ id: 'bench', name: 'bench', role: 'user', clearances: [], quotas, createdAt: '' }];
  if (name === 'eventBounds') return () => ({ oldest: 1, newest: 0 });
  if (name === 'appendEvents') return () => 0;
  if (name.startsWith('list') || name === 'getHostWarnings') return () => [];
  return () => undefined;
}
// A plain object in front of a Proxy: the first read of a method makes it and keeps it as an own
// property, so the timed calls read ordinary properties (a Proxy trap on every call would be
// measured as the core's cost).
const noStore = Object.create(
  new Proxy({}, {
    get(_, name: string, receiver: object) {
      const fn = noop(name);
      Object.defineProperty(receiver, name, { value: fn });
      return fn;
    },
  }),
) as Store;

/** The allocator's surface the benchmark drives: the core's mapping service, plus a lookup of the space. */
interface Allocator {
  map: Core['mappings']['map'];
  mapBatch: Core['mappings']['mapBatch'];
  unmap: Core['mappings']['unmap'];
  getIoas: Core['ioas']['get'];
}

const who: Caller = { id: 'bench', role: 'user' };
const BASE = 0x100000; // first mapping; the pages below are filled so auto-allocation searches past all
const STRIDE = 0x2000; // mappings of 0x1000 with a hole between each
const LENGTH = 0x1000;
const rw = { read: true, write: true };
const ROUNDS = settings.coreRounds;

function populated(n: number): { allocator: Allocator; ioas: number } {
  const core = createCore(noStore, {
    ioasidRange: { min: 1, max: 1000 },
    now: Date.now,
    secrets: { newId: (p) => `${p}-1`, newToken: () => ({ token: '', hash: '' }), hashToken: () => '' },
  });
  const m = core.mappings;
  const allocator: Allocator = { map: m.map.bind(m), mapBatch: m.mapBatch.bind(m), unmap: m.unmap.bind(m), getIoas: core.ioas.get.bind(core.ioas) };
  const ctx = core.contexts.create(who, {});
  const ioas = core.ioas.create(who, ctx.id).id;
  for (let i = 0; i < n; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 10_000); j++) batch.push({ iova: BigInt(BASE + j * STRIDE), length: BigInt(LENGTH), userAddress: 0n, ...rw });
    allocator.mapBatch(who, ioas, batch);
  }
  return { allocator, ioas };
}

/** The same pseudo-random positions for both sides of a round. */
function positions(n: number, ops: number, seed: number): Float64Array {
  const out = new Float64Array(ops);
  let s = seed;
  for (let k = 0; k < ops; k++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[k] = BASE + (s % n) * STRIDE;
  }
  return out;
}

/** ns per (unmap + map back) pair in ioasd's core. */
function ioasdFixed(allocator: Allocator, ioas: number, at: Float64Array): number {
  const length = BigInt(LENGTH);
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < at.length; k++) {
    const iova = BigInt(at[k]!);
    allocator.unmap(who, ioas, { iova, length });
    allocator.map(who, ioas, { iova, length, userAddress: 0n, read: true, write: true });
  }
  return Number(process.hrtime.bigint() - t0) / at.length;
}

/** ns per pair of the index calls alone: what unmap and map ask of the IOVA index. */
function indexFixed(tree: IovaTree<Mapping>, at: Float64Array): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < at.length; k++) {
    const iova = BigInt(at[k]!);
    const last = iova + BigInt(LENGTH - 1);
    const m = tree.meetingList(iova, last)[0]!;
    tree.remove(m.iova);
    if (tree.overlaps(iova, last)) throw new Error('overlap');
    const p = m.pages;
    tree.insert({ iova, last, length: m.length, userAddress: m.userAddress, read: m.read, write: m.write, pages: { id: p.id, principalId: p.principalId, bytes: p.bytes, writable: p.writable, refs: 0 } });
  }
  return Number(process.hrtime.bigint() - t0) / at.length;
}

/** ns per (remove + overlap check + insert) in sorted-btree, keyed by start, valued by last. */
function btreeFixed(tree: BTree<number, number>, at: Float64Array): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < at.length; k++) {
    const iova = at[k]!;
    const last = iova + LENGTH - 1;
    tree.delete(iova);
    const below = tree.getPairOrNextLower(last);
    if (below !== undefined && below[1] >= iova) throw new Error('overlap');
    tree.set(iova, last);
  }
  return Number(process.hrtime.bigint() - t0) / at.length;
}

/** ns per (auto map + unmap): the first fit is the hole past the packed run, found through the gap index. */
function autoCost(allocator: Allocator, ioas: number, ops: number): number {
  const length = BigInt(LENGTH);
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < ops; k++) {
    const m = allocator.map(who, ioas, { length, userAddress: 0n, read: true, write: true });
    allocator.unmap(who, ioas, { iova: m.iova, length });
  }
  return Number(process.hrtime.bigint() - t0) / ops;
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('bench/core needs node --expose-gc (npm run bench passes it)');
  collect();
  collect();
}

interface SizeResult {
  n: number;
  ioasd: number[];
  index: number[];
  btree: number[];
  auto: number[];
  /** Bytes per live mapping: V8 heap, ArrayBuffers. */
  heap?: { heap: number; buffers: number };
}

interface Setup {
  n: number;
  allocator: Allocator;
  ioas: number;
  tree: BTree<number, number>;
  heap?: SizeResult['heap'];
}

function setup(n: number, withMemory: boolean): Setup {
  let before: NodeJS.MemoryUsage | undefined;
  if (withMemory) {
    gc();
    before = process.memoryUsage();
  }
  const { allocator, ioas } = populated(n);
  let heap: SizeResult['heap'];
  if (before) {
    gc();
    const after = process.memoryUsage();
    heap = { heap: (after.heapUsed - before.heapUsed) / n, buffers: (after.arrayBuffers - before.arrayBuffers) / n };
  }
  const tree = new BTree<number, number>();
  for (let j = 0; j < n; j++) tree.set(BASE + j * STRIDE, BASE + j * STRIDE + LENGTH - 1);
  // Fill the low holes so that auto-allocation has to search past the whole packed run.
  allocator.mapBatch(who, ioas, Array.from({ length: BASE / LENGTH - 1 }, (_, i) => ({ iova: BigInt((i + 1) * LENGTH), length: BigInt(LENGTH), userAddress: 0n, ...rw })));
  return { n, allocator, ioas, tree, heap };
}

/**
 * All sizes are built first, then every side of every size runs once per round, in an order that
 * reverses each round: the ratios between sides and between sizes come from the same moments of a
 * machine shared with others.
 */
function measureAll(sizes: number[]): SizeResult[] {
  const setups = sizes.map((n, i) => setup(n, i === sizes.length - 1));
  const sides = setups.flatMap((s) => {
    const index = s.allocator.getIoas(who, s.ioas).mappings;
    return [
      { n: s.n, kind: 'ioasd', run: (at: Float64Array) => ioasdFixed(s.allocator, s.ioas, at), times: [] as number[] },
      { n: s.n, kind: 'btree', run: (at: Float64Array) => btreeFixed(s.tree, at), times: [] as number[] },
      { n: s.n, kind: 'index', run: (at: Float64Array) => indexFixed(index, at), times: [] as number[] },
    ];
  });
  const ops = (n: number) => (n >= 100_000 ? 40_000 : 60_000);
  for (const side of sides) side.run(positions(side.n, 20_000, 1)); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    const at = new Map(sizes.map((n) => [n, positions(n, ops(n), 1000 + round)]));
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) side.times.push(side.run(at.get(side.n)!));
  }
  const auto = new Map(sizes.map((n) => [n, [] as number[]]));
  for (const s of setups) autoCost(s.allocator, s.ioas, 5_000);
  for (let round = 0; round < 3; round++) {
    for (const s of round % 2 === 0 ? setups : [...setups].reverse()) auto.get(s.n)!.push(autoCost(s.allocator, s.ioas, 20_000));
  }
  const times = (n: number, kind: string) => sides.find((x) => x.n === n && x.kind === kind)!.times;
  return setups.map((s) => ({ n: s.n, ioasd: times(s.n, 'ioasd'), btree: times(s.n, 'btree'), index: times(s.n, 'index'), auto: auto.get(s.n)!, heap: s.heap }));
}

const spread = (xs: number[]) => `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}`;

export function benchCore(): Figure[] {
  const results = measureAll([1_000, 100_000, 1_000_000]);
  for (const r of results) {
    console.log(
      `core  n=${fmt(r.n).padStart(9)}  fixed map+unmap: ioasd ${fmt(median(r.ioasd))} ns (rounds ${spread(r.ioasd)}), ` +
        `sorted-btree ${fmt(median(r.btree))} ns (${spread(r.btree)}), speed ${fmt(median(r.btree) / median(r.ioasd), 2)}x; ` +
        `index calls alone ${fmt(median(r.index))} ns (${spread(r.index)}); auto ${fmt(median(r.auto))} ns`,
    );
  }
  const [small, , big] = results as [SizeResult, SizeResult, SizeResult];
  const speed = median(big.btree) / median(big.ioasd);
  const ratio = median(big.ioasd) / median(small.ioasd);
  const autoRatio = median(big.auto) / median(small.auto);
  const heap = big.heap!;
  const perMapping = heap.heap + heap.buffers;
  console.log(`core  memory per live mapping at 1M: ${fmt(heap.heap, 1)} B heap + ${fmt(heap.buffers, 1)} B ArrayBuffers`);
  const ns = (xs: number[]) => `${fmt(median(xs))} ns`;
  // The per-size details (100k, the index calls alone, auto at each size) are in the lines above.
  return [
    { name: 'heap per live mapping at 1M (heap + ArrayBuffers)', value: `${fmt(perMapping)} B`, target: '<= 160 B', pass: perMapping <= 160 },
    {
      name: 'core fixed map+unmap at random positions, 1M live',
      value: ns(big.ioasd),
      baseline: 'sorted-btree: remove + overlap check + insert',
      baselineValue: ns(big.btree),
      ratio: `${fmt(speed, 2)}x`,
      target: '>= 1.0x',
      pass: speed >= 1,
    },
    {
      name: 'core fixed map+unmap: cost at 1M / cost at 1k',
      value: `${ns(big.ioasd)} / ${ns(small.ioasd)}`,
      ratio: `${fmt(ratio, 2)}x`,
      target: '<= 2x',
      pass: ratio <= 2,
    },
    {
      name: 'core auto map+unmap: cost at 1M / cost at 1k',
      value: `${ns(big.auto)} / ${ns(small.auto)}`,
      ratio: `${fmt(autoRatio, 2)}x`,
      target: '<= 2x',
      pass: autoRatio <= 2,
    },
  ];
}
