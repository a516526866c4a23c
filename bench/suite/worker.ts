/**
 * Child-process side of the suite (see inChild in common.ts): measurements that need a heap and a
 * JIT state of their own. `worker.ts <task> <json args>`; the answer goes back over IPC.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import type { Mapping, Pages } from '../../src/core/model.js';
import { BENCH_TOKEN, median, nowNs, secondsSince } from './common.js';
import { load } from './compiled.js';
import { autoHoleLoop, autoTopLoop, BENCH_CALLER, fixedLoop, iovaOf, LENGTH, populate, randomIovas } from './core-ops.js';
import { benchDeps } from './no-store.js';
import type * as AllocatorModule from '../../src/core/allocator.js';
import type * as DatabaseModule from '../../src/store/database.js';
import type * as SqliteStoreModule from '../../src/store/sqlite-store.js';
import type * as AppModule from '../../src/app.js';

const gcEntries: { start: number; duration: number }[] = [];
new PerformanceObserver((items) => {
  for (const e of items.getEntries()) gcEntries.push({ start: e.startTime, duration: e.duration });
}).observe({ entryTypes: ['gc'] });

const collect = (): void => (globalThis as { gc?: () => void }).gc?.();

/** GC milliseconds that started in [from, to] (performance.now() time). Observer entries arrive on a later tick. */
async function gcMsBetween(from: number, to: number): Promise<number> {
  await new Promise((r) => setImmediate(r));
  return gcEntries.filter((e) => e.start >= from && e.start <= to).reduce((s, e) => s + e.duration, 0);
}

async function timed(run: () => number, ops: number): Promise<{ ns: number; gcShare: number }> {
  collect();
  const from = performance.now();
  const seconds = run();
  const gc = await gcMsBetween(from, performance.now());
  return { ns: (seconds * 1e9) / ops, gcShare: gc / (seconds * 1000) };
}

export interface CoreArgs {
  n: number;
  warmOps: number;
  fixedOps: number;
  autoOps: number;
  holeOps: number;
  chunks: number;
  seed: number;
}

export interface CoreResult {
  n: number;
  populateSeconds: number;
  heapMb: number;
  /** ns per op, one per chunk. */
  fixed: number[];
  auto: number[];
  hole: number[];
  /** Share of the timed loops spent in GC (median over chunks). */
  gcShare: { fixed: number; auto: number; hole: number };
}

async function core(a: CoreArgs): Promise<CoreResult> {
  const { Allocator } = await load<typeof AllocatorModule>('core/allocator.js');
  const allocator = new Allocator(benchDeps());
  const ctx = allocator.createContext(BENCH_CALLER, {});
  const ioasId = allocator.createIoas(BENCH_CALLER, ctx.id).id;
  const t0 = nowNs();
  populate(allocator, BENCH_CALLER, ioasId, a.n);
  const populateSeconds = secondsSince(t0);
  collect();
  const heapMb = process.memoryUsage().heapUsed / 2 ** 20;

  // Warm-up of every loop at this size, then the chunks interleaved.
  fixedLoop(allocator, BENCH_CALLER, ioasId, randomIovas(a.n, a.warmOps, a.seed ^ 1));
  autoTopLoop(allocator, BENCH_CALLER, ioasId, a.n, a.warmOps);
  autoHoleLoop(allocator, BENCH_CALLER, ioasId, randomIovas(a.n, a.warmOps >> 1, a.seed ^ 2));
  const fixed: { ns: number; gcShare: number }[] = [];
  const auto: { ns: number; gcShare: number }[] = [];
  const hole: { ns: number; gcShare: number }[] = [];
  for (let c = 0; c < a.chunks; c++) {
    const fixedIovas = randomIovas(a.n, a.fixedOps, a.seed + 100 * c);
    fixed.push(await timed(() => fixedLoop(allocator, BENCH_CALLER, ioasId, fixedIovas), a.fixedOps));
    auto.push(await timed(() => autoTopLoop(allocator, BENCH_CALLER, ioasId, a.n, a.autoOps), a.autoOps));
    const holeIovas = randomIovas(a.n, a.holeOps, a.seed + 100 * c + 7);
    hole.push(await timed(() => autoHoleLoop(allocator, BENCH_CALLER, ioasId, holeIovas), a.holeOps));
  }
  const space = allocator.getIoas(BENCH_CALLER, ioasId);
  if (space.mappings.size !== a.n) throw new Error(`ioas holds ${space.mappings.size} mappings after the loops, expected ${a.n}`);
  return {
    n: a.n,
    populateSeconds,
    heapMb,
    fixed: fixed.map((x) => x.ns),
    auto: auto.map((x) => x.ns),
    hole: hole.map((x) => x.ns),
    gcShare: { fixed: median(fixed.map((x) => x.gcShare)), auto: median(auto.map((x) => x.gcShare)), hole: median(hole.map((x) => x.gcShare)) },
  };
}

// ---- restart ------------------------------------------------------------------------------------

export interface PopulateArgs {
  db: string;
  n: number;
}

/**
 * A database with one context, one ioas and N mappings (each with its pages row), written through
 * the real SqliteStore (so in its own encoding) inside one transaction. Answers the ioas id.
 */
async function restartPopulate(a: PopulateArgs): Promise<{ ioasId: number; seconds: number; fileMb: number }> {
  const { buildApp } = await load<typeof AppModule>('app.js');
  const { openDatabase } = await load<typeof DatabaseModule>('store/database.js');
  const { SqliteStore } = await load<typeof SqliteStoreModule>('store/sqlite-store.js');
  const app = await buildApp({ db: a.db, adminToken: BENCH_TOKEN, leaseCheckMs: 0 });
  const headers = { authorization: `Bearer ${BENCH_TOKEN}` };
  const ctx = await app.inject({ method: 'POST', url: '/v1/contexts', headers, payload: {} });
  const contextId = (ctx.json() as { id: string }).id;
  const ioas = await app.inject({ method: 'POST', url: '/v1/ioas', headers, payload: { contextId } });
  if (ioas.statusCode !== 201) throw new Error(`POST /v1/ioas answered ${ioas.statusCode}: ${ioas.body}`);
  const ioasId = (ioas.json() as { id: number }).id;
  await app.close();

  const t0 = nowNs();
  const { db } = openDatabase(a.db);
  const store = new SqliteStore(db);
  store.transaction(() => {
    for (let i = 0; i < a.n; i++) {
      const iova = iovaOf(i);
      const pages = { id: i + 1, principalId: 'admin', bytes: LENGTH, writable: true, refs: 1 };
      const m: Mapping = { iova, last: iova + LENGTH - 1n, length: LENGTH, userAddress: 0x7f00_0000_0000n + iova, read: true, write: true, pages };
      // Older schemas keep the pages in a table of their own.
      (store as unknown as { insertPages?: (p: Pages) => void }).insertPages?.(pages);
      store.insertMapping(ioasId, m);
    }
  });
  db.pragma('wal_checkpoint(TRUNCATE)');
  const fileMb = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number) / 2 ** 20;
  db.close();
  return { ioasId, seconds: secondsSince(t0), fileMb };
}

export interface StartArgs {
  db: string;
  n: number;
  ioasId: number;
}

/** A cold start in a fresh process: module loading, then buildApp + ready (the figure with the target). */
async function restartStart(a: StartArgs): Promise<{ importSeconds: number; readySeconds: number }> {
  const t0 = nowNs();
  const { buildApp } = await load<typeof AppModule>('app.js');
  const importSeconds = secondsSince(t0);
  const t1 = nowNs();
  const app = await buildApp({ db: a.db, adminToken: BENCH_TOKEN, leaseCheckMs: 0 });
  await app.ready();
  const readySeconds = secondsSince(t1);
  const size = app.ioasd.allocator.space(a.ioasId)?.mappings.size;
  await app.close();
  if (size !== a.n) throw new Error(`restart restored ${size} mappings, expected ${a.n}`);
  return { importSeconds, readySeconds };
}

/** The allocator rebuild alone over an opened store, and, for the diagnosis, reading the rows alone. */
async function restartAllocator(a: StartArgs): Promise<{ openSeconds: number; allocatorSeconds: number; rowsSeconds: number }> {
  const { Allocator } = await load<typeof AllocatorModule>('core/allocator.js');
  const { openDatabase } = await load<typeof DatabaseModule>('store/database.js');
  const { SqliteStore } = await load<typeof SqliteStoreModule>('store/sqlite-store.js');
  const t0 = nowNs();
  const { db } = openDatabase(a.db);
  const store = new SqliteStore(db);
  const openSeconds = secondsSince(t0);
  const t1 = nowNs();
  let allocator: InstanceType<typeof Allocator> | undefined = new Allocator(benchDeps(store));
  const allocatorSeconds = secondsSince(t1);
  const size = allocator.space(a.ioasId)?.mappings.size;
  if (size !== a.n) throw new Error(`the allocator restored ${size} mappings, expected ${a.n}`);
  allocator = undefined;
  collect();
  const t2 = nowNs();
  let rows = 0;
  for (const m of store.loadAllocator().mappings) rows += m.length > 0n ? 1 : 0;
  const rowsSeconds = secondsSince(t2);
  db.close();
  if (rows !== a.n) throw new Error(`read ${rows} rows, expected ${a.n}`);
  return { openSeconds, allocatorSeconds, rowsSeconds };
}

const tasks: Record<string, (args: never) => Promise<unknown>> = {
  core,
  'restart-populate': restartPopulate,
  'restart-start': restartStart,
  'restart-allocator': restartAllocator,
};

const [task, json] = process.argv.slice(2);
if (process.send && task) {
  try {
    const fn = tasks[task];
    if (!fn) throw new Error(`unknown task ${task}`);
    const value = await fn(JSON.parse(json ?? '{}') as never);
    process.send({ ok: true, value }, () => process.disconnect());
  } catch (err) {
    process.send({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.disconnect());
  }
}
