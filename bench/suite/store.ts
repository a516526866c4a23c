/**
 * Section "store": the core section's unmap+map loop at 1k live mappings over the real SQLite store
 * (openDatabase on a temporary file + SqliteStore, dependencies as bootstrap() in src/app.ts builds
 * them: the policy and the caller's quotas are read from the store on every map). Each op is two
 * transactions (the unmap, the map), each committed with synchronous=FULL.
 *
 * Baseline, same run, alternating: bare better-sqlite3 on a database with the same pragmas, doing the
 * same number of ops, each a single-row DELETE transaction and a single-row INSERT transaction on a
 * table keyed like `mappings`. Its cost is almost all commit and fsync, which makes that cost visible.
 */
import type Database from 'better-sqlite3';
import { BARE_TABLE, fmt, list, median, OFFSET, openLikeIoasd, sig, tempDir, type Figure } from './common.js';
import { load } from './compiled.js';
import { BENCH_CALLER, fixedLoop, iovaOf, LENGTH, populate, randomIovas } from './core-ops.js';
import { BENCH_QUOTAS } from './no-store.js';
import type * as AllocatorModule from '../../src/core/allocator.js';
import type * as DatabaseModule from '../../src/store/database.js';
import type * as SqliteStoreModule from '../../src/store/sqlite-store.js';
import type * as PrincipalsModule from '../../src/core/principals.js';

const N = 1_000;

function bareLoop(db: Database.Database, iovas: readonly bigint[]): number {
  const del = db.prepare('DELETE FROM t WHERE ioas_id = ? AND iova = ?');
  const ins = db.prepare('INSERT INTO t (ioas_id, iova, length, user_address, flags) VALUES (?, ?, ?, ?, ?)');
  const unmapTx = db.transaction((iova: bigint) => del.run(1, iova - OFFSET));
  const mapTx = db.transaction((iova: bigint) => ins.run(1, iova - OFFSET, LENGTH - OFFSET, 0x7f00_0000_0000n + iova - OFFSET, 3));
  const t0 = process.hrtime.bigint();
  for (const iova of iovas) {
    unmapTx(iova);
    mapTx(iova);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function benchStore(opts: { rounds: number; quick: boolean; coreFixedNs?: Map<number, number> | undefined }): Promise<Figure[]> {
  const { Allocator } = await load<typeof AllocatorModule>('core/allocator.js');
  const { openDatabase } = await load<typeof DatabaseModule>('store/database.js');
  const { SqliteStore } = await load<typeof SqliteStoreModule>('store/sqlite-store.js');
  const { DEFAULT_QUOTAS } = await load<typeof PrincipalsModule>('core/principals.js');
  const tmp = tempDir('ioasd-bench-store-');
  const { db } = openDatabase(tmp.path('ioasd.db'));
  const bare = openLikeIoasd(tmp.path('bare.db'));
  try {
    const store = new SqliteStore(db);
    store.setPolicy('device-first');
    store.insertPrincipal({ id: BENCH_CALLER.id, name: 'bench', role: 'user', clearances: [], quotas: BENCH_QUOTAS, createdAt: new Date().toISOString(), tokenHash: 'bench' });
    let ids = 0;
    const allocator = new Allocator({
      store,
      ioasidRange: { min: 1, max: 2 ** 31 - 1 },
      now: Date.now,
      newId: (prefix) => `${prefix}-${++ids}`,
      policy: () => store.getPolicy() ?? 'device-first',
      quotasOf: (id) => store.getPrincipal(id)?.quotas ?? DEFAULT_QUOTAS,
    });
    const ctx = allocator.createContext(BENCH_CALLER, {});
    const ioasId = allocator.createIoas(BENCH_CALLER, ctx.id).id;
    populate(allocator, BENCH_CALLER, ioasId, N);

    bare.exec(BARE_TABLE);
    const seed = bare.prepare('INSERT INTO t (ioas_id, iova, length, user_address, flags) VALUES (?, ?, ?, ?, ?)');
    bare.transaction(() => {
      for (let i = 0; i < N; i++) seed.run(1, iovaOf(i) - OFFSET, LENGTH - OFFSET, 0x7f00_0000_0000n + iovaOf(i) - OFFSET, 3);
    })();

    // Calibrate: enough ops for ~1.5 s of the slower loop (ours), the same count for the baseline.
    const warm = randomIovas(N, 200, 11);
    bareLoop(bare, warm);
    const perOp = fixedLoop(allocator, BENCH_CALLER, ioasId, warm) / warm.length;
    const ops = Math.max(200, Math.min(20_000, Math.round((opts.quick ? 0.5 : 1.5) / perOp)));

    const ours: number[] = [];
    const base: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const iovas = randomIovas(N, ops, 1000 + round);
      base.push((bareLoop(bare, iovas) * 1e9) / ops);
      ours.push((fixedLoop(allocator, BENCH_CALLER, ioasId, iovas) * 1e9) / ops);
      console.log(`store  round ${round + 1}: ${fmt(ops)} ops each; bare DELETE+INSERT ${sig(base[round]!)} ns/op, ioasd unmap+map ${sig(ours[round]!)} ns/op`);
    }
    if (allocator.getIoas(BENCH_CALLER, ioasId).mappings.size !== N) throw new Error('the store loop lost mappings');
    const o = median(ours);
    const b = median(base);
    const figures: Figure[] = [
      { section: 'store', name: 'bare sqlite DELETE tx + INSERT tx @ 1k', value: `${sig(b)} ns/op  ${fmt(1e9 / b)} op/s`, raw: `rounds ${list(base)} ns/op; ${fmt(ops)} ops per round; ${sig(b / 2)} ns per commit` },
      { section: 'store', name: 'ioasd unmap+map, SqliteStore @ 1k', value: `${sig(o)} ns/op  ${fmt(1e9 / o)} op/s`, raw: `rounds ${list(ours)} ns/op` },
      { section: 'store', name: 'ioasd / bare (cost)', value: `${fmt(o / b, 2)}x` },
    ];
    const core = opts.coreFixedNs?.get(N);
    figures.push({
      section: 'store',
      name: 'share of the op in bare commits (bare / ioasd)',
      value: `${fmt((100 * b) / o)}%`,
      raw: core === undefined ? 'run the core section too for the no-I/O cost' : `the core alone (no I/O) ${sig(core)} ns/op, ${fmt((100 * core) / o, 1)}% of the op`,
    });
    return figures;
  } finally {
    db.close();
    bare.close();
    tmp.remove();
  }
}
