/**
 * The HTTP figures: ioasd (the built service, started as the container starts it) against small
 * standalone Fastify servers (bench/baselines/), all driven by the same load generator with the same
 * requests (same headers, same bodies), the servers on one CPU and the generator on the other.
 *
 * Three groups, each a subset of `npm run bench`:
 * - reads:  GET /v1/groups (demo inventory), GET /v1/system, GET /v1/ioas/{id} (1,000 mappings) and
 *           GET /v1/ioas/{id}/mappings?limit=100, against bare Fastify answering a small object.
 * - writes: POST /v1/ioas/{id}/mappings (auto IOVA) and POST /v1/contexts, against (a) Fastify with one
 *           INSERT per request and (b) Fastify with group commit, both with ioasd's pragmas.
 * - batch:  POST /v1/ioas/{id}/mappings/batch with 1,000 ranges (auto IOVA), in ranges/s, against
 *           Fastify inserting the 1,000 rows in one transaction.
 *
 * Within a group, after a warm-up of every side, each round runs every side once, in an order that
 * reverses each round; a figure is the median of its rounds, its ratio the median of the ratios of the
 * same rounds (ioasd / baseline, measured moments apart, so a machine shared with others moves both).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { LoadResult, LoadSpec } from './load.js';
import { cpuBusySeconds, cpuSeconds, startBaseline, startIoasd, type Ioasd, type Server } from './processes.js';
import { pinning, settings } from './settings.js';
import { fmt, median, ms, tempDir, type Figure } from './util.js';

/** The load generator, one process for the whole run (warm), on the load CPU. */
class Loader {
  private readonly child: ChildProcess;

  constructor() {
    const [cmd, ...pin] = pinning.load;
    const script = new URL('./load.ts', import.meta.url).pathname;
    // fork through taskset: taskset execs node in place, so the IPC channel is inherited.
    this.child = cmd
      ? fork(script, [], { execPath: cmd, execArgv: [...pin, process.execPath, '--import', 'tsx'] })
      : fork(script, [], { execArgv: ['--import', 'tsx'] });
  }

  run(spec: LoadSpec): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited (${code})`));
      this.child.once('exit', onExit);
      this.child.once('message', (m: { result?: LoadResult; error?: string }) => {
        this.child.off('exit', onExit);
        if (m.result) resolve(m.result);
        else reject(new Error(`load generator: ${m.error}`));
      });
      this.child.send(spec);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

/** One thing to load: a server and the request sent to it over and over. */
interface Side {
  label: string;
  server: Server;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  expect: number;
  /** A write: carries a new Idempotency-Key each time (unless BENCH_IDEMPOTENCY=0). */
  write?: boolean;
}

/**
 * One run of a side: the generator's result, the server process's share of its CPU over the run, and
 * the share other processes took from that CPU meanwhile (0-1 each).
 */
type Run = LoadResult & { serverCpu?: number; othersCpu?: number };

/** The server CPU as /proc/stat names it. */
const SERVER_CPU = pinning.server.length > 0 ? 'cpu0' : 'cpu';

/** What each side measured, round by round. */
type Results = Map<Side, Run[]>;

/**
 * Waits until the server has worked off what the last run left in flight (the generator drops its
 * connections at the end, the server still finishes their requests): one request answered, then a
 * moment of rest, so the next side starts on an idle CPU.
 */
async function settle(server: Server): Promise<void> {
  await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(120_000) }).then((r) => r.arrayBuffer());
  await new Promise((resolve) => setTimeout(resolve, 250));
}

async function once(loader: Loader, side: Side, headers: Record<string, string>, seconds: number, warmUp = false): Promise<Run> {
  const spec: LoadSpec = {
    url: side.server.url,
    method: side.method,
    path: side.path,
    headers,
    ...(side.body === undefined ? {} : { body: side.body }),
    connections: settings.connections,
    seconds,
    expect: side.expect,
    ...(side.write && settings.idempotency ? { idempotencyKeys: true } : {}),
  };
  const own0 = cpuSeconds(side.server.child.pid);
  const busy0 = cpuBusySeconds(SERVER_CPU);
  const t0 = performance.now();
  const r: Run = await loader.run(spec);
  const own1 = cpuSeconds(side.server.child.pid);
  const busy1 = cpuBusySeconds(SERVER_CPU);
  const wall = (performance.now() - t0) / 1000;
  if (own0 !== undefined && own1 !== undefined) r.serverCpu = (own1 - own0) / wall;
  // Where nothing is pinned, /proc/stat's `cpu` line adds up every CPU: the generator's time is in it too.
  if (r.serverCpu !== undefined && busy0 !== undefined && busy1 !== undefined && pinning.server.length > 0) {
    r.othersCpu = Math.max(0, (busy1 - busy0) / wall - r.serverCpu);
  }
  await settle(side.server);
  const other = Object.entries(r.statuses).filter(([code]) => code !== String(side.expect));
  if (other.length > 0 || (r.requests === 0 && !warmUp)) {
    // Show what the server says to one such request, so that a broken setup is clear.
    const res = await fetch(side.server.url + side.path, {
      method: side.method,
      headers: side.body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(side.body === undefined ? {} : { body: side.body }),
    });
    throw new Error(
      `${side.label}: expected ${side.expect}, got ${JSON.stringify(r.statuses)} (errors ${r.errors}); one more answered ${res.status}: ${(await res.text()).slice(0, 500)}`,
    );
  }
  return r;
}

const rate = (r: LoadResult) => fmt(r.rate);

/** Warm-up, then `settings.rounds` rounds, every side once per round, the order reversed each round. */
async function measure(group: string, loader: Loader, sides: Side[], headers: Record<string, string>): Promise<Results> {
  const results: Results = new Map(sides.map((s) => [s, []]));
  for (const side of sides) await once(loader, side, headers, settings.warmupSeconds, true);
  for (let round = 0; round < settings.rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) results.get(side)!.push(await once(loader, side, headers, settings.seconds));
    const said = sides.map((s) => {
      const r = results.get(s)!.at(-1)!;
      const others = r.othersCpu === undefined ? '' : ` (others ${fmt(r.othersCpu * 100)}%)`;
      const server = r.serverCpu === undefined ? '' : `server ${fmt(r.serverCpu * 100)}% CPU${others}, `;
      return `${s.label} ${rate(r)}/s (p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, ${server}loader ${fmt(r.cpu * 100)}%${r.errors ? `, ${r.errors} errors` : ''})`;
    });
    console.log(`${group}  round ${round + 1}/${settings.rounds}: ${said.join('; ')}`);
  }
  return results;
}

/** Notes printed under the table: sides whose load generator was near the limit of its CPU. */
export const loaderNotes: string[] = [];

function compare(
  results: Results,
  ours: Side,
  base: Side,
  o: { name: string; baseline: string; target: number; unit?: string; per?: number },
): Figure {
  const a = results.get(ours)!;
  const b = results.get(base)!;
  const per = o.per ?? 1;
  const unit = o.unit ?? 'req/s';
  const ratio = median(a.map((r, i) => r.rate / b[i]!.rate));
  for (const [side, rs] of [
    [ours, a],
    [base, b],
  ] as const) {
    const busiest = Math.max(...rs.map((r) => r.cpu));
    const note = `${side.label}: the load generator used up to ${fmt(busiest * 100)}% of its CPU (near 100%, it, not the server, set the pace)`;
    if (busiest > 0.9 && !loaderNotes.includes(note)) loaderNotes.push(note);
    const stolen = rs.flatMap((r) => (r.othersCpu === undefined ? [] : [r.othersCpu]));
    const shared = `${side.label}: other processes used ~${fmt(median(stolen) * 100)}% of the server's CPU during its rounds (a shared machine: noisy)`;
    if (stolen.length > 0 && median(stolen) > 0.1 && !loaderNotes.includes(shared)) loaderNotes.push(shared);
  }
  const m = (rs: LoadResult[], key: 'p50' | 'p99') => ms(median(rs.map((r) => r[key])));
  return {
    name: o.name,
    value: `${fmt(median(a.map((r) => r.rate * per)))} ${unit}`,
    p50: m(a, 'p50'),
    p99: m(a, 'p99'),
    baseline: o.baseline,
    baselineValue: `${fmt(median(b.map((r) => r.rate * per)))} ${unit}`,
    baselineP50: m(b, 'p50'),
    baselineP99: m(b, 'p99'),
    ratio: `${fmt(ratio, 2)}x`,
    target: `>= ${fmt(o.target, 1)}x`,
    pass: ratio >= o.target,
  };
}

/** ioasd's state for the figures, set up over its API as an operator would. */
interface Prepared {
  readIoas: number;
  writeIoas: number;
  batchIoas: number;
}

const hexOf = (n: number | bigint) => `0x${n.toString(16)}`;
const RANGES = 1000;
const MAX_COUNT = 2 ** 31 - 1;

async function prepare(ioasd: Ioasd, headers: Record<string, string>): Promise<Prepared> {
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(ioasd.url + path, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`ioasd setup: ${method} ${path} answered ${res.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  // No quota may stop a run: lift the admin's to their maxima.
  await call('PATCH', '/v1/principals/admin', {
    quotas: { maxIoas: MAX_COUNT, maxMappings: MAX_COUNT, maxPinnedBytes: '0xffffffffffffffff', maxPasids: MAX_COUNT, maxContexts: MAX_COUNT },
  });
  const ctx = ((await call('POST', '/v1/contexts', { name: 'bench' })) as { id: string }).id;
  const newIoas = async () => ((await call('POST', '/v1/ioas', { contextId: ctx })) as { id: number }).id;
  const readIoas = await newIoas();
  // 1,000 fixed mappings with a hole between each, for GET /v1/ioas/{id} and the mappings page.
  await call('POST', `/v1/ioas/${readIoas}/mappings/batch`, {
    mappings: Array.from({ length: RANGES }, (_, i) => ({ iova: hexOf(0x100000 + i * 0x2000), length: '0x1000', userAddress: hexOf(0x7f0000000000 + i * 0x1000) })),
  });
  return { readIoas, writeIoas: await newIoas(), batchIoas: await newIoas() };
}

/** A single map request with an allocated IOVA: the body of the write figures, on every side. */
const MAP_BODY = JSON.stringify({ length: '0x1000', userAddress: '0x7f0000000000' });
/** 1,000 ranges, each with an allocated IOVA. */
const BATCH_BODY = JSON.stringify({ mappings: Array.from({ length: RANGES }, (_, i) => ({ length: '0x1000', userAddress: hexOf(0x7f0000000000 + i * 0x1000) })) });

export type HttpGroup = 'reads' | 'writes' | 'batch';
export const HTTP_GROUPS: HttpGroup[] = ['reads', 'writes', 'batch'];

export async function benchHttp(groups: HttpGroup[] = HTTP_GROUPS): Promise<Figure[]> {
  const tmp = tempDir('ioasd-bench-http-');
  const running: Server[] = [];
  const loader = new Loader();
  const start = async <S extends Server>(s: Promise<S>): Promise<S> => {
    const server = await s;
    running.push(server);
    return server;
  };
  try {
    console.log(
      `http  ${pinning.note}; ${settings.connections} connections, ${settings.rounds} rounds of ${settings.seconds} s after ${settings.warmupSeconds} s of warm-up; ` +
        `writes ${settings.idempotency ? 'with' : 'without'} an Idempotency-Key`,
    );
    const ioasd = await start(startIoasd(tmp.dir));
    const headers = { authorization: `Bearer ${ioasd.token}` };
    const ids = await prepare(ioasd, headers);
    const figures: Figure[] = [];
    const stop = async (...servers: Server[]) => {
      for (const s of servers) {
        await s.stop();
        running.splice(running.indexOf(s), 1);
      }
    };

    if (groups.includes('reads')) {
      const bare = await start(startBaseline('get'));
      const get = (label: string, server: Server, path: string): Side => ({ label, server, method: 'GET', path, expect: 200 });
      const base = get('bare GET', bare, '/small');
      const groupsSide = get('GET /v1/groups', ioasd, '/v1/groups');
      const system = get('GET /v1/system', ioasd, '/v1/system');
      const ioas = get('GET /v1/ioas/{id}', ioasd, `/v1/ioas/${ids.readIoas}`);
      const page = get('GET mappings?limit=100', ioasd, `/v1/ioas/${ids.readIoas}/mappings?limit=100`);
      const r = await measure('reads', loader, [base, groupsSide, system, ioas, page], headers);
      const baseline = 'bare Fastify GET, small object';
      figures.push(
        compare(r, groupsSide, base, { name: 'GET /v1/groups (demo)', baseline, target: 0.7 }),
        compare(r, system, base, { name: 'GET /v1/system', baseline, target: 0.7 }),
        compare(r, ioas, base, { name: 'GET /v1/ioas/{id} (1k mappings)', baseline, target: 0.7 }),
        compare(r, page, base, { name: 'GET /v1/ioas/{id}/mappings?limit=100', baseline, target: 0.5 }),
      );
      await stop(bare);
    }

    if (groups.includes('writes')) {
      const one = await start(startBaseline('insert', { BENCH_DB: tmp.path('insert.db') }));
      const grouped = await start(startBaseline('group-commit', { BENCH_DB: tmp.path('group-commit.db') }));
      const post = (label: string, server: Server, path: string, body: string): Side => ({ label, server, method: 'POST', path, body, expect: 201, write: true });
      const a = post('1 INSERT/request', one, '/rows', MAP_BODY);
      const b = post('group commit', grouped, '/rows', MAP_BODY);
      const map = post('POST mappings', ioasd, `/v1/ioas/${ids.writeIoas}/mappings`, MAP_BODY);
      const ctx = post('POST /v1/contexts', ioasd, '/v1/contexts', '{}');
      const r = await measure('writes', loader, [a, map, b, ctx], headers);
      const baselineA = 'Fastify + 1 INSERT/request (WAL, synchronous=FULL)';
      const baselineB = 'Fastify + group commit (one COMMIT per event-loop turn)';
      figures.push(
        compare(r, map, a, { name: 'POST /v1/ioas/{id}/mappings (auto IOVA)', baseline: baselineA, target: 2.5 }),
        compare(r, map, b, { name: 'POST /v1/ioas/{id}/mappings (auto IOVA)', baseline: baselineB, target: 0.7 }),
        compare(r, ctx, a, { name: 'POST /v1/contexts', baseline: baselineA, target: 2.5 }),
        compare(r, ctx, b, { name: 'POST /v1/contexts', baseline: baselineB, target: 0.7 }),
      );
      await stop(one, grouped);
    }

    if (groups.includes('batch')) {
      const rows = await start(startBaseline('batch', { BENCH_DB: tmp.path('batch.db') }));
      const base: Side = { label: '1,000 rows/transaction', server: rows, method: 'POST', path: '/batch', body: BATCH_BODY, expect: 201, write: true };
      const ours: Side = { label: 'POST mappings/batch', server: ioasd, method: 'POST', path: `/v1/ioas/${ids.batchIoas}/mappings/batch`, body: BATCH_BODY, expect: 201, write: true };
      const r = await measure('batch', loader, [base, ours], headers);
      figures.push(
        compare(r, ours, base, { name: 'batch map of 1,000 ranges', baseline: 'Fastify inserting 1,000 rows in one transaction', target: 0.6, unit: 'ranges/s', per: RANGES }),
      );
      await stop(rows);
    }
    return figures;
  } finally {
    loader.stop();
    for (const s of running) await s.stop();
    tmp.done();
  }
}
