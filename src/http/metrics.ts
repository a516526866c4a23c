import type { FastifyInstance } from 'fastify';
import type { Allocator, Caller } from '../core/allocator.js';
import type { PolicyEngine } from '../core/policy/engine.js';
import type { Principals } from '../core/principals.js';
import type { WireErrno } from './errnos.js';

/**
 * The service's own Prometheus metrics (SPEC 10), beside fastify-metrics' HTTP histograms:
 * - gauges of what each principal holds, computed when scraped from the services (never kept up
 *   to date by hand in handlers, so they cannot drift from the state they describe);
 * - `ioasd_refusals_total{errno, method, route}`, counting every problem+json answer by its errno
 *   and the route pattern (`/v1/ioas/:id/mappings`, not the raw URL, so cardinality stays bounded;
 *   `(no route)` for unknown paths, `(http parser)` for errors met before routing).
 */

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
};

const EVERYONE: Caller = { id: '', role: 'admin' };

/** The services the gauges read (read-only). */
export interface HoldingsSources {
  principals: Principals;
  allocator: Allocator;
  engine: PolicyEngine;
}

/** What each principal holds now. */
export function holdings(services: HoldingsSources): Map<string, Holdings> {
  const { principals, allocator, engine } = services;
  const out = new Map<string, Holdings>();
  const of = (principalId: string): Holdings => {
    let h = out.get(principalId);
    if (!h) {
      h = { groupsOwned: 0, devicesBound: 0, openGroups: 0, contexts: 0, ioas: 0, hwpts: 0, mappings: 0, pinnedBytes: 0 };
      out.set(principalId, h);
    }
    return h;
  };
  for (const p of principals.list()) of(p.id).pinnedBytes = Number(allocator.usageFor(p.id).pinnedBytes);
  for (const c of allocator.listContexts(EVERYONE)) of(c.principalId).contexts++;
  for (const s of allocator.listIoas(EVERYONE)) {
    const h = of(s.principalId);
    h.ioas++;
    h.mappings += s.mappings.size;
  }
  const owned = new Map<string, Set<number>>();
  const own = (principalId: string, groupId: number) => {
    const set = owned.get(principalId) ?? new Set<number>();
    set.add(groupId);
    owned.set(principalId, set);
  };
  for (const hold of engine.state.groupHolds.values()) {
    of(hold.principalId).openGroups++;
    own(hold.principalId, hold.groupId);
  }
  for (const b of engine.state.bindings.values()) {
    of(b.principalId).devicesBound++;
    own(b.principalId, b.groupId);
  }
  for (const [principalId, groups] of owned) of(principalId).groupsOwned = groups.size;
  for (const hwpt of engine.state.hwpts.values()) of(hwpt.principalId).hwpts++;
  return out;
}

/** Registers the gauges and the refusal counter; call after fastify-metrics and before the routes. */
export function registerDomainMetrics(app: FastifyInstance): void {
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
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
    if (!String(reply.getHeader('content-type') ?? '').startsWith('application/problem+json')) return payload;
    let errno = 'unknown';
    try {
      errno = (JSON.parse(payload) as { errno?: string }).errno ?? 'none';
    } catch {
      // not JSON after all: counted as unknown
    }
    refusals.inc({ errno, method: request.method, route: request.routeOptions.url ?? '(no route)' });
    return payload;
  });
}
