/**
 * Restart time with 1M mappings: the database is filled once (directly, in the service's own
 * encoding), then the real start command (`node <flags> dist/main.js`, as npm start and the
 * container run it) is timed from spawn until GET /healthz answers 200: process start, lock,
 * migrations, allocator and policy rebuild, Fastify ready, first answer. Each round is a fresh
 * process. Not pinned to a CPU: a start uses what the machine gives it (V8's GC helper threads).
 *
 * Two starts per round, alternating: one after a crash (the packed copy of the mappings table is
 * removed first, so the rows are read), whose clean stop packs the table again (timed from the
 * server's log line), and one after that clean stop (the packed copy is read).
 */
import { spawn } from 'node:child_process';
import type * as AppModule from '../src/app.js';
import Database from 'better-sqlite3';
import { serviceNodeFlags } from './processes.js';
import { load } from './runtime.js';
import { settings } from './settings.js';
import { fmt, median, tempDir, type Figure } from './util.js';

const { buildApp } = await load<typeof AppModule>('app.js');
const TOKEN = 'bench-admin-token-0123456789';
const N = 1_000_000;

/**
 * Seconds from spawn to the first 200 of GET /healthz (polled as soon as the port is logged), and the
 * milliseconds its clean stop (SIGTERM) took to pack the mappings table, when it did.
 */
function timedStart(db: string): Promise<{ seconds: number; packMs: number | undefined }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...serviceNodeFlags(), 'dist/main.js'], {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', IOASD_DB: db, IOASD_PORT: '0', IOASD_HOST: '127.0.0.1', IOASD_ADMIN_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let url: string | undefined;
    const poll = async (): Promise<void> => {
      const ok = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
      if (!ok) return void setTimeout(() => void poll(), 2);
      const seconds = (performance.now() - t0) / 1000;
      child.on('exit', () => {
        const ms = /"mappings":\d+,"ms":(\d+)/.exec(out)?.[1];
        resolve({ seconds, packMs: ms === undefined ? undefined : Number(ms) });
      });
      child.kill('SIGTERM');
    };
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (url) return;
      url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (url) void poll();
    });
    child.on('exit', (code) => {
      if (!url) reject(new Error(`server exited ${code} before listening:\n${out}`));
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

    const crashed: number[] = [];
    const packs: number[] = [];
    const clean: number[] = [];
    for (let round = 0; round < settings.restartRounds; round++) {
      const raw = new Database(path);
      raw.exec('DELETE FROM mapping_snapshot');
      raw.close();
      const rows = await timedStart(path);
      crashed.push(rows.seconds);
      if (rows.packMs === undefined) throw new Error('the clean stop did not pack the mappings table');
      packs.push(rows.packMs / 1000);
      const packed = await timedStart(path);
      clean.push(packed.seconds);
      console.log(
        `restart  round ${round + 1}/${settings.restartRounds}: after a crash ${fmt(rows.seconds, 2)} s (stop packed the table in ${fmt(rows.packMs / 1000, 2)} s), after a clean stop ${fmt(packed.seconds, 2)} s`,
      );
    }
    // The rebuilt state is checked once, in this process, so the timed runs are the bare server.
    const app = await buildApp({ db: path, adminToken: TOKEN, leaseCheckMs: 0 });
    const count = app.ioasd.ioas.get({ id: 'admin', role: 'admin' }, ioas).mappings.size;
    await app.close();
    if (count !== N) throw new Error(`restored ${count} mappings, expected ${N}`);
    const s = median(clean);
    return [
      { name: `restart with ${fmt(N / 1e6)}M mappings after a clean stop: spawn to /healthz 200`, value: `${fmt(s, 2)} s`, target: '< 2 s', pass: s < 2 },
      { name: `start with ${fmt(N / 1e6)}M mappings after a crash (rows read): spawn to /healthz 200`, value: `${fmt(median(crashed), 2)} s` },
      { name: `clean stop with ${fmt(N / 1e6)}M mappings: packing the table for the next start`, value: `${fmt(median(packs), 2)} s` },
    ];
  } finally {
    tmp.done();
  }
}
