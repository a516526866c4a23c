/**
 * Restart time with 1M mappings: the database is filled once (directly, in the service's own
 * encoding), then the whole start-up is timed: open, lock, migrations, allocator and policy rebuild,
 * Fastify ready. The allocator rebuild alone is reported too.
 */
import type * as AppModule from '../src/app.js';
import Database from 'better-sqlite3';
import { load } from './runtime.js';
import { fmt, median, tempDir, type Figure } from './util.js';

const { buildApp } = await load<typeof AppModule>('app.js');
const TOKEN = 'bench-admin-token-0123456789';
const N = 1_000_000;

export async function benchRestart(): Promise<Figure[]> {
  const tmp = tempDir('ioasd-bench-restart-');
  try {
    const path = tmp.path('ioasd.db');
    const first = await buildApp({ db: path, adminToken: TOKEN, leaseCheckMs: 0 });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const ctx = (await first.inject({ method: 'POST', url: '/v1/contexts', headers: auth, payload: {} })).json().id as string;
    const ioas = (await first.inject({ method: 'POST', url: '/v1/ioas', headers: auth, payload: { contextId: ctx } })).json().id as number;
    await first.close();

    const db = new Database(path);
    const OFFSET = 1n << 63n;
    const map = db.prepare('INSERT INTO mappings (ioas_id, iova, length, user_address, flags, pages_id, pages_bytes) VALUES (?, ?, ?, ?, 7, ?, ?)');
    const t0 = performance.now();
    db.transaction(() => {
      for (let i = 0; i < N; i++) {
        map.run(ioas, 0x100000n + BigInt(i) * 0x2000n - OFFSET, 0x1000n - OFFSET, 0x7f0000000000n + BigInt(i) * 0x1000n - OFFSET, i + 1, 0x1000n - OFFSET);
      }
    })();
    db.close();
    console.log(`restart  filled ${fmt(N)} mappings in ${fmt((performance.now() - t0) / 1000, 1)} s`);

    const starts: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t = performance.now();
      const app = await buildApp({ db: path, adminToken: TOKEN, leaseCheckMs: 0 });
      await app.ready();
      starts.push((performance.now() - t) / 1000);
      const count = app.ioasd.allocator.getIoas({ id: 'admin', role: 'admin' }, ioas).mappings.size;
      if (count !== N) throw new Error(`restored ${count} mappings, expected ${N}`);
      await app.close();
      console.log(`restart  round ${round + 1}: ready in ${fmt(starts[round]!, 2)} s with ${fmt(count)} mappings`);
    }
    const s = median(starts);
    return [{ name: `restart with ${fmt(N)} mappings`, value: `${fmt(s, 2)} s`, target: '< 3 s', pass: s < 3 }];
  } finally {
    tmp.done();
  }
}
