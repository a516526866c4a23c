import type { FastifyInstance } from 'fastify';
import metricsPlugin from 'fastify-metrics';
import type { ObjectTable } from '../../core/objects.js';
import type { Principals } from '../../core/principals.js';
import type { QuotaBook } from '../../core/quotas.js';
import type { WireErrno } from '../errno-status.js';
import { registerRequestDurations } from './request-durations.js';

/**
 * Prometheus metrics at /metrics (SPEC 10): fastify-metrics' endpoint and prom-client's process and
 * runtime metrics, `http_request_duration_seconds` (request-durations.ts), and the
 * service's own:
 * - gauges of what each principal holds, computed when scraped from the object table and the quota
 *   book (never kept up to date by hand in handlers, so they cannot drift from the state they describe);
 * - `ioasd_refusals_total{errno, method, route}`, counting every problem+json answer by its errno
 *   and the route pattern (`/v1/ioas/:id/mappings`, not the raw URL, so cardinality stays bounded;
 *   `(no route)` for unknown paths, `(http parser)` for errors met before routing).
 */
export async function metrics(app: FastifyInstance): Promise<void> {
  // fastify-metrics is CommonJS with its plugin on `default`.
  await app.register(metricsPlugin.default, {
    endpoint: { url: '/metrics', schema: { hide: true }, logLevel: 'warn' } as never,
    clearRegisterOnInit: true,
    // The request histogram is request-durations.ts: fastify-metrics' own takes two hooks, a
    // WeakMap entry, a timer and prom-client's label checks per request, a tenth of a GET /healthz.
    routeMetrics: { enabled: false },
  });
  registerRequestDurations(app);
  registerDomainMetrics(app);
}

/** Per-principal totals, from one pass over the services' state. */
export interface Holdings {
  groupsOwned: number;
  devicesBound: number;
  openGroups: number;
  contexts: number;
  ioas: number;
  hwpts: number;
  mappings: number;
  pinnedBytes: number;
  pasids: number;
}

const GAUGES: Record<keyof Holdings, { name: string; help: string }> = {
  groupsOwned: { name: 'ioasd_groups_owned', help: 'IOMMU groups whose DMA ownership a principal holds (open or through a bound device)' },
  devicesBound: { name: 'ioasd_devices_bound', help: 'devices bound (device-first)' },
  openGroups: { name: 'ioasd_groups_open', help: 'groups held open (group-first)' },
  contexts: { name: 'ioasd_contexts', help: 'contexts' },
  ioas: { name: 'ioasd_ioas', help: 'I/O address spaces' },
  hwpts: { name: 'ioasd_hwpts', help: 'hardware page tables, automatic and manual' },
  mappings: { name: 'ioasd_mappings', help: 'DMA mappings' },
  pinnedBytes: { name: 'ioasd_pinned_bytes', help: 'bytes charged against maxPinnedBytes' },
  pasids: { name: 'ioasd_pasids', help: 'PASID attachments' },
};

/** The services the gauges read (read-only). */
export interface HoldingsSources {
  principals: Principals;
  objects: ObjectTable;
  quotas: QuotaBook;
}

/** What each principal holds now. */
export function holdings(services: HoldingsSources): Map<string, Holdings> {
  const { principals, objects, quotas } = services;
  const out = new Map<string, Holdings>();
  const of = (principalId: string): Holdings => {
    let h = out.get(principalId);
    if (!h) {
      h = { groupsOwned: 0, devicesBound: 0, openGroups: 0, contexts: 0, ioas: 0, hwpts: 0, mappings: 0, pinnedBytes: 0, pasids: 0 };
      out.set(principalId, h);
    }
    return h;
  };
  for (const p of principals.list()) {
    const usage = quotas.usageFor(p.id);
    const h = of(p.id);
    h.mappings = usage.mappings;
    h.pinnedBytes = Number(usage.pinnedBytes);
  }
  for (const c of objects.all('context').values()) of(c.principalId).contexts++;
  for (const s of objects.all('ioas').values()) of(s.principalId).ioas++;
  for (const hwpt of objects.all('hwpt').values()) of(hwpt.principalId).hwpts++;
  for (const p of objects.all('pasid-attachment').values()) of(p.principalId).pasids++;
  const owned = new Map<string, Set<number>>();
  const own = (principalId: string, groupId: number) => {
    const set = owned.get(principalId) ?? new Set<number>();
    set.add(groupId);
    owned.set(principalId, set);
  };
  for (const hold of objects.all('group-hold').values()) {
    of(hold.principalId).openGroups++;
    own(hold.principalId, hold.groupId);
  }
  for (const b of objects.all('binding').values()) {
    of(b.principalId).devicesBound++;
    own(b.principalId, b.groupId);
  }
  for (const [principalId, groups] of owned) of(principalId).groupsOwned = groups.size;
  return out;
}

/** Registers the gauges and the refusal counter; after fastify-metrics and before the routes. */
function registerDomainMetrics(app: FastifyInstance): void {
  const { client } = app.metrics;
  const gauges = new Map<keyof Holdings, InstanceType<typeof client.Gauge>>();
  // A scrape starts every metric's collect in registration order before it awaits any, so the first
  // gauge's collect takes one snapshot and sets every gauge from it: one pass over the state per scrape.
  const refresh = (): void => {
    for (const g of gauges.values()) g.reset();
    for (const [principal, h] of holdings(app.ioasd)) for (const [key, g] of gauges) g.set({ principal }, h[key]);
  };
  for (const [key, { name, help }] of Object.entries(GAUGES) as [keyof Holdings, { name: string; help: string }][]) {
    const first = gauges.size === 0;
    gauges.set(key, new client.Gauge({ name, help, labelNames: ['principal'], ...(first ? { collect: refresh } : {}) }));
  }

  const refusals = new client.Counter({
    name: 'ioasd_refusals_total',
    help: 'problem+json answers, by errno, method and route pattern',
    labelNames: ['errno', 'method', 'route'],
  });
  app.decorate('countRawRefusal', (errno: WireErrno) => refusals.inc({ errno, method: '', route: '(http parser)' }));
  // A callback hook, not an async one: most answers are not refusals and should not pay a promise.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode >= 400 && typeof payload === 'string' && String(reply.getHeader('content-type') ?? '').startsWith('application/problem+json')) {
      let errno = 'unknown';
      try {
        errno = (JSON.parse(payload) as { errno?: string }).errno ?? 'none';
      } catch {
        // not JSON after all: counted as unknown
      }
      refusals.inc({ errno, method: request.method, route: request.routeOptions.url ?? '(no route)' });
    }
    done(null, payload);
  });
}
