/**
 * HTTP map throughput: POST /v1/ioas/{id}/mappings on the real app (auth, zod, rules, one SQLite
 * transaction with the mapping, its pages and its audit row), against a bare Fastify route doing one
 * better-sqlite3 INSERT on a database with the same settings, driven by the same keep-alive client
 * with the same concurrency, alternately, in this run.
 */
import type * as AppModule from '../src/app.js';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { load } from './runtime.js';
import { fmt, median, tempDir, type Figure } from './util.js';

const { buildApp } = await load<typeof AppModule>('app.js');
const TOKEN = 'bench-admin-token-0123456789';
const CONCURRENCY = 16;
const SECONDS = 2;

/** Requests per second over a fixed time, `CONCURRENCY` in flight. */
async function drive(port: number, path: string, headers: Record<string, string>, body: (n: number) => string): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let sent = 0;
  let ok = 0;
  const end = Date.now() + SECONDS * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const payload = body(sent++);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(payload);
      });
      if (status !== 201) throw new Error(`${path} answered ${status}`);
      ok++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
  return ok / ((Date.now() - t0) / 1000);
}

function openLikeIoasd(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  return db;
}

export async function benchHttp(): Promise<Figure[]> {
  const tmp = tempDir('ioasd-bench-http-');
  try {
    // The bare baseline: one INSERT per request, same database settings.
    const bareDb = openLikeIoasd(tmp.path('bare.db'));
    bareDb.exec('CREATE TABLE t (ioas INTEGER, iova INTEGER, length INTEGER, user_address INTEGER, PRIMARY KEY (ioas, iova)) WITHOUT ROWID');
    const insert = bareDb.prepare('INSERT INTO t VALUES (?, ?, ?, ?)');
    const bare = Fastify({ logger: false });
    bare.post('/insert', async (req, reply) => {
      const b = req.body as { iova: string; length: string; userAddress: string };
      insert.run(1, BigInt(b.iova) - (1n << 63n), BigInt(b.length), BigInt(b.userAddress));
      return reply.code(201).send({ iova: b.iova, length: b.length });
    });
    await bare.listen({ host: '127.0.0.1', port: 0 });
    const barePort = (bare.server.address() as AddressInfo).port;

    const app = await buildApp({ db: tmp.path('ioasd.db'), adminToken: TOKEN, leaseCheckMs: 0 });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const ctx = (await app.inject({ method: 'POST', url: '/v1/contexts', headers: auth, payload: {} })).json().id as string;
    const ioas = (await app.inject({ method: 'POST', url: '/v1/ioas', headers: auth, payload: { contextId: ctx } })).json().id as number;
    // Lift the admin's entry quota so the run never stops on it.
    await app.inject({ method: 'PATCH', url: '/v1/principals/admin', headers: auth, payload: { quotas: { maxMappings: 100_000_000 } } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const ourPort = (app.server.address() as AddressInfo).port;

    let bareN = 0;
    let ourN = 0;
    const body = (next: () => number) => () => JSON.stringify({ iova: `0x${(0x100000 + next() * 0x1000).toString(16)}`, length: '0x1000', userAddress: '0x7f0000000000' });
    const bareRuns: number[] = [];
    const ourRuns: number[] = [];
    for (let round = 0; round < 5; round++) {
      bareRuns.push(await drive(barePort, '/insert', {}, body(() => bareN++)));
      ourRuns.push(await drive(ourPort, `/v1/ioas/${ioas}/mappings`, auth, body(() => ourN++)));
      console.log(`http  round ${round + 1}: bare ${fmt(bareRuns[round]!)} req/s, ioasd map ${fmt(ourRuns[round]!)} req/s`);
    }
    await app.close();
    await bare.close();
    bareDb.close();
    const ratio = median(ourRuns) / median(bareRuns);
    return [
      { name: 'http bare fastify + 1 insert', value: `${fmt(median(bareRuns))} req/s` },
      { name: 'http ioasd POST .../mappings', value: `${fmt(median(ourRuns))} req/s` },
      { name: 'http ioasd / bare', value: `${fmt(ratio, 2)}x`, target: '>= 0.6x', pass: ratio >= 0.6 },
    ];
  } finally {
    tmp.done();
  }
}
