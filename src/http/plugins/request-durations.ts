import type { FastifyInstance } from 'fastify';

/** prom-client's default buckets (seconds), which fastify-metrics' histogram used. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Methods fastify-metrics leaves out of the request histogram; this one does the same. */
const UNMEASURED_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT']);

interface Series {
  labels: { method: string; route: string; status_code: number };
  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
  exemplar?: null;
}

/**
 * A histogram by method, route and status, written by prom-client's registry exactly as a
 * prom-client Histogram with those labels writes it (test/http/metrics.test.ts compares the two),
 * for a fraction of the cost per observation: prom-client's `observe` checks and hashes the labels
 * object every time (about 2 µs), this one looks the series up in three maps of interned strings.
 * The registry reads a metric through `get()` and clears it through `reset()`.
 */
export class RouteHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();
  /** Every series in the order first observed, the order prom-client writes them in. */
  private ordered: Series[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  observe(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.series.get(route);
    if (!byMethod) this.series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (!s) {
      s = { labels: { method, route, status_code: status }, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      byStatus.set(status, s);
      this.ordered.push(s);
    }
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    s.counts[i]!++;
    s.sum += seconds;
    s.count++;
  }

  /** What prom-client's Histogram.get() answers: per series its cumulative buckets, +Inf, sum and count. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.ordered) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { le, ...s.labels }, value: acc, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket, exemplar: null });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
    this.ordered = [];
  }
}

/**
 * `http_request_duration_seconds{method, route, status_code}`, the histogram fastify-metrics
 * kept (same name, help, labels and buckets; only routed requests, by route pattern; no HEAD,
 * OPTIONS, TRACE or CONNECT), observed in one callback hook from the response time Fastify itself
 * measures for the `request completed` log line. A histogram only: Prometheus aggregates it across
 * instances, and a summary's client-side quantiles cost time on every request.
 */
export function registerRequestDurations(app: FastifyInstance): void {
  const durations = new RouteHistogram('http_request_duration_seconds', 'request duration in seconds');
  const { register } = app.metrics.client;
  register.registerMetric(durations as unknown as Parameters<typeof register.registerMetric>[0]);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route !== undefined && !UNMEASURED_METHODS.has(request.method)) durations.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
