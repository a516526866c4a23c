/**
 * Restart time with 1M mappings: the database is filled once (directly, in the service's own
 * encoding), then the real start command (`node <flags> dist/main.js`, as npm start and the
 * container run it) is timed from spawn until it logs that it listens: process start, lock,
 * migrations, allocator and policy rebuild, Fastify ready. Each round is a fresh process.
 */
import { spawn } from 'node:child_process';
import type * as AppModule from '../src/app.js';
import Database from 'better-sqlite3';
import { load } from './runtime.js';
import { fmt, median, tempDir, type Figure } from './util.js';

const { buildApp } = await load<typeof AppModule>('app.js');
const TOKEN = 'bench-admin-token-0123456789';
const N = 1_000_000;

/** The service's own start flags (package.json "start"). */
const NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=64'];

function timedStart(db: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...NODE_FLAGS, 'dist/main.js'], {
      env: { PATH: process.env.PATH, IOASD_DB: db, IOASD_PORT: '0', IOASD_HOST: '127.0.0.1', IOASD_ADMIN_TOKEN: TOKEN, IOASD_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Server listening')) {
        const seconds = (performance.now() - t0) / 1000;
        child.kill('SIGTERM');
        child.on('exit', () => resolve(seconds));
      }
    });
    child.on('exit', (code) => {
      if (!out.includes('Server listening')) reject(new Error(`server exited ${code} before listening:\n${out}`));
    });
  });
}

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
        map.run(ioas, 0x100000n + BigInt(i) * 0x2000n - OFFSET, 0x1000n - OFFSET, 0x7f0000000000n + BigInt(i) * 0x1000n - OFFSET, i + 1, null);
      }
    })();
    db.close();
    console.log(`restart  filled ${fmt(N)} mappings in ${fmt((performance.now() - t0) / 1000, 1)} s`);

    const starts: number[] = [];
    for (let round = 0; round < 3; round++) {
      starts.push(await timedStart(path));
      console.log(`restart  round ${round + 1}: listening after ${fmt(starts[round]!, 2)} s`);
    }
    // The rebuilt state is checked once, in this process, so the timed runs are the bare server.
    const app = await buildApp({ db: path, adminToken: TOKEN, leaseCheckMs: 0 });
    const count = app.ioasd.ioas.get({ id: 'admin', role: 'admin' }, ioas).mappings.size;
    await app.close();
    if (count !== N) throw new Error(`restored ${count} mappings, expected ${N}`);
    const s = median(starts);
    return [{ name: `restart with ${fmt(N)} mappings`, value: `${fmt(s, 2)} s`, target: '< 3 s', pass: s < 3 }];
  } finally {
    tmp.done();
  }
}
