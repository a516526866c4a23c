/**
 * Section "restart": start-up with 1M mappings in the database. The database is filled once through
 * the real SqliteStore (one big transaction, the store's own encoding), then every round starts the
 * service in a fresh process, as a restart does: buildApp({db}) + app.ready() is timed (open, lock,
 * migrations, inventory/policy/admin bootstrap, the allocator and policy rebuild, Fastify plugins),
 * and separately, in another fresh process, `new Allocator(...)` over an opened store alone.
 * The database file is in the OS page cache (just written): these are warm-cache figures.
 */
import { fmt, inChild, list, median, tempDir, type Figure } from './common.js';
import type { PopulateArgs, StartArgs } from './worker.js';

const N = 1_000_000;

export async function benchRestart(opts: { rounds: number; quick: boolean }): Promise<Figure[]> {
  const tmp = tempDir('ioasd-bench-restart-');
  try {
    const db = tmp.path('ioasd.db');
    const filled = await inChild<{ ioasId: number; seconds: number; fileMb: number }>('restart-populate', { db, n: N } satisfies PopulateArgs, { heapMb: 4096 });
    console.log(`restart  filled ${fmt(N)} mappings through SqliteStore in ${fmt(filled.seconds, 1)} s; database ${fmt(filled.fileMb)} MB`);
    const args: StartArgs = { db, n: N, ioasId: filled.ioasId };
    const starts: { importSeconds: number; readySeconds: number }[] = [];
    const allocs: { openSeconds: number; allocatorSeconds: number; rowsSeconds: number }[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const s = await inChild<{ importSeconds: number; readySeconds: number }>('restart-start', args, { heapMb: 4096 });
      const a = await inChild<{ openSeconds: number; allocatorSeconds: number; rowsSeconds: number }>('restart-allocator', args, { heapMb: 4096 });
      starts.push(s);
      allocs.push(a);
      console.log(
        `restart  round ${round + 1}: buildApp + ready ${fmt(s.readySeconds, 2)} s (after ${fmt(s.importSeconds, 2)} s of module loading) | ` +
          `openDatabase ${fmt(a.openSeconds, 2)} s, new Allocator ${fmt(a.allocatorSeconds, 2)} s (reading the rows alone ${fmt(a.rowsSeconds, 2)} s)`,
      );
    }
    const ready = median(starts.map((s) => s.readySeconds));
    const imports = median(starts.map((s) => s.importSeconds));
    const alloc = median(allocs.map((a) => a.allocatorSeconds));
    const rows = median(allocs.map((a) => a.rowsSeconds));
    return [
      { section: 'restart', name: 'buildApp + ready, 1M mappings', value: `${fmt(ready, 2)} s`, raw: `rounds ${list(starts.map((s) => s.readySeconds), 2)} s`, target: '< 3 s', pass: ready < 3 },
      { section: 'restart', name: '  new Allocator alone, 1M mappings', value: `${fmt(alloc, 2)} s`, raw: `rounds ${list(allocs.map((a) => a.allocatorSeconds), 2)} s; of which reading the rows ~${fmt(rows, 2)} s`, target: '< 3 s', pass: alloc < 3 },
      { section: 'restart', name: '  module loading before buildApp', value: `${fmt(imports, 2)} s`, raw: `rounds ${list(starts.map((s) => s.importSeconds), 2)} s` },
    ];
  } finally {
    tmp.remove();
  }
}
