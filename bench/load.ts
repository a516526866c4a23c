/**
 * The load generator: a child process on the load CPU (bench/http.ts starts it once per run and sends
 * it one run at a time over IPC), so its own work never shares the server's core. autocannon drives
 * `connections` keep-alive connections, each sending its next request as soon as the previous answer
 * arrives, for `seconds`, and reports the completed requests and their latency percentiles. The
 * latencies are taken from autocannon's per-response event (fractional ms; its own histogram keeps
 * whole ms, too coarse for a server answering in 1-3 ms). The process's CPU time over the run says
 * whether the generator itself was the limit: near 100% of its CPU, it was.
 */
import autocannon, { type RawRequest, type Result } from 'autocannon';
import { randomUUID } from 'node:crypto';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
  /** The status every answer must have. */
  expect: number;
  /** Each request carries a new `Idempotency-Key`: a random UUID, as clients make them. */
  idempotencyKeys?: boolean;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  /** Completed requests with the expected status per second. */
  rate: number;
  /** Latency in ms. */
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  /** CPU time of this process / wall time: 1.0 is one core fully busy. */
  cpu: number;
}

export async function run(spec: LoadSpec): Promise<LoadResult> {
  const request = {
    method: spec.method,
    path: spec.path,
    headers: spec.body === undefined ? spec.headers : { ...spec.headers, 'content-type': 'application/json' },
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.idempotencyKeys
      ? {
          setupRequest: (r: RawRequest) => {
            r.headers['idempotency-key'] = randomUUID();
            return r;
          },
        }
      : {}),
  };
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await new Promise<Result>((resolve, reject) => {
    const options = { url: spec.url, connections: spec.connections, duration: spec.seconds, timeout: 30, requests: [request] };
    const instance = autocannon(options, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, status, _bytes, responseTime) => {
      if (status !== spec.expect) return;
      if (count === latencies.length) {
        const grown = new Float64Array(count * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
    });
  });
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const sorted = latencies.subarray(0, count).sort();
  const percentile = (p: number) => (count === 0 ? NaN : sorted[Math.min(count - 1, Math.floor((p / 100) * count))]!);
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]));
  const good = statuses[String(spec.expect)] ?? 0;
  return {
    requests: good,
    seconds: result.duration,
    rate: good / result.duration,
    p50: percentile(50),
    p99: percentile(99),
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    cpu: (used.user + used.system) / 1e6 / wall,
  };
}

// As a child process: one run per message, answered with its result (or { error }).
if (process.send) {
  process.on('message', (spec: LoadSpec) => {
    run(spec).then(
      (result) => process.send!({ result }),
      (err: unknown) => process.send!({ error: String((err as Error)?.stack ?? err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
