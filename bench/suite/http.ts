/**
 * Section "http": POST /v1/ioas/{id}/mappings throughput of the real app (buildApp from src/app.ts:
 * bearer auth, zod validation and serialisation, the mapping rules, one SQLite transaction with the
 * pages row, the mapping row and the audit row, synchronous=FULL), each request at a new iova.
 *
 * Baseline, same run: a bare Fastify 5 app (no zod, no auth) whose one POST route parses the same
 * body and does one better-sqlite3 INSERT on a database with the same pragmas. Both are driven by the
 * same node:http keep-alive client in this process, CONCURRENCY requests in flight for a fixed time,
 * alternately (bare, ours, bare, ours, ...); the medians are compared.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BARE_TABLE, BENCH_TOKEN, fmt, list, median, OFFSET, openLikeIoasd, tempDir, type Figure } from './common.js';
import { load } from './compiled.js';
import type * as AppModule from '../../src/app.js';

const CONCURRENCY = 16;

interface Run {
  rps: number;
  p50: number;
  p99: number;
}

/** Drives POSTs to `path` for `seconds` with CONCURRENCY in flight; every answer must be 201. */
async function drive(port: number, path: string, headers: Record<string, string>, nextBody: () => string, seconds: number): Promise<Run> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const post = (payload: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`${path} answered ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await post(nextBody());
      latencies.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: latencies[Math.floor(latencies.length * 0.5)] ?? NaN, p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN };
}

function bodies(): () => string {
  let n = 0;
  // Fresh iovas 0x2000 apart (a hole between each), as in the core section.
  return () => JSON.stringify({ iova: `0x${(0x2000 + n++ * 0x2000).toString(16)}`, length: '0x1000', userAddress: '0x7f0000000000' });
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

export async function benchHttp(opts: { rounds: number; quick: boolean }): Promise<Figure[]> {
  const { buildApp } = await load<typeof AppModule>('app.js');
  const seconds = opts.quick ? 1 : 3;
  const tmp = tempDir('ioasd-bench-http-');
  const bareDb = openLikeIoasd(tmp.path('bare.db'));
  const bare = Fastify({ logger: false });
  let ours: FastifyInstance | undefined;
  try {
    bareDb.exec(BARE_TABLE);
    const insert = bareDb.prepare('INSERT INTO t (ioas_id, iova, length, user_address, flags) VALUES (?, ?, ?, ?, ?)');
    bare.post('/map', async (req, reply) => {
      const b = req.body as { iova: string; length: string; userAddress: string };
      const iova = BigInt(b.iova);
      const length = BigInt(b.length);
      const userAddress = BigInt(b.userAddress);
      insert.run(1, iova - OFFSET, length - OFFSET, userAddress - OFFSET, 3);
      return reply.code(201).send({ iova: `0x${iova.toString(16)}`, length: `0x${length.toString(16)}`, userAddress: `0x${userAddress.toString(16)}`, read: true, write: true });
    });
    const barePort = await listen(bare);

    ours = await buildApp({ db: tmp.path('ioasd.db'), adminToken: BENCH_TOKEN, leaseCheckMs: 0 });
    const auth = { authorization: `Bearer ${BENCH_TOKEN}` };
    const inject = async (method: 'POST' | 'PATCH', url: string, payload: object, expect: number) => {
      const res = await ours!.inject({ method, url, headers: auth, payload });
      if (res.statusCode !== expect) throw new Error(`${method} ${url} answered ${res.statusCode}: ${res.body}`);
      return res.json() as Record<string, unknown>;
    };
    // The default maxMappings (65535) could stop a long run.
    await inject('PATCH', '/v1/principals/admin', { quotas: { maxMappings: 2 ** 31 - 1 } }, 200);
    const contextId = (await inject('POST', '/v1/contexts', {}, 201)).id as string;
    const ioasId = (await inject('POST', '/v1/ioas', { contextId }, 201)).id as number;
    const ourPort = await listen(ours);
    const ourPath = `/v1/ioas/${ioasId}/mappings`;
    const bareBody = bodies();
    const ourBody = bodies();

    // Warm-up (JIT, sockets, the databases' first pages), not counted.
    await drive(barePort, '/map', {}, bareBody, 0.5);
    await drive(ourPort, ourPath, auth, ourBody, 0.5);
    const bareRuns: Run[] = [];
    const ourRuns: Run[] = [];
    for (let round = 0; round < Math.max(2, opts.rounds); round++) {
      bareRuns.push(await drive(barePort, '/map', {}, bareBody, seconds));
      ourRuns.push(await drive(ourPort, ourPath, auth, ourBody, seconds));
      const b = bareRuns[round]!;
      const o = ourRuns[round]!;
      console.log(
        `http   round ${round + 1}: bare ${fmt(b.rps)} req/s (p50 ${fmt(b.p50, 2)} ms, p99 ${fmt(b.p99, 2)} ms) | ` +
          `ioasd ${fmt(o.rps)} req/s (p50 ${fmt(o.p50, 2)} ms, p99 ${fmt(o.p99, 2)} ms)`,
      );
    }
    const b = median(bareRuns.map((r) => r.rps));
    const o = median(ourRuns.map((r) => r.rps));
    const ratio = o / b;
    return [
      { section: 'http', name: `bare fastify + 1 INSERT, ${CONCURRENCY} in flight`, value: `${fmt(b)} req/s`, raw: `rounds ${list(bareRuns.map((r) => r.rps))} req/s, ${seconds} s each` },
      { section: 'http', name: `ioasd POST .../mappings, ${CONCURRENCY} in flight`, value: `${fmt(o)} req/s`, raw: `rounds ${list(ourRuns.map((r) => r.rps))} req/s, ${seconds} s each` },
      { section: 'http', name: 'ioasd / bare (throughput)', value: `${fmt(ratio, 2)}x`, target: '>= 0.6x', pass: ratio >= 0.6 },
    ];
  } finally {
    await ours?.close();
    await bare.close();
    bareDb.close();
    tmp.remove();
  }
}
