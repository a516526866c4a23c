import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RouteHistogram } from '../../src/http/plugins/request-durations.js';
import { testApp, type TestApp } from '../helpers.js';

/** SPEC 10's metrics: gauges of what each principal holds, computed at scrape time, and refusals by errno and route. */

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

/** The value of one sample of the exposition text, or undefined when absent. */
async function sample(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = (await t.app.inject({ url: '/metrics' })).body;
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${want}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function holdings(principal: string): Promise<Record<string, number | undefined>> {
  const out: Record<string, number | undefined> = {};
  for (const g of ['groups_owned', 'devices_bound', 'groups_open', 'contexts', 'ioas', 'hwpts', 'mappings', 'pinned_bytes']) {
    out[g] = await sample(`ioasd_${g}`, { principal });
  }
  return out;
}

describe('holdings gauges (device-first)', () => {
  it('follow binds, attaches, maps and a context delete, per principal', async () => {
    const alice = await t.user('alice', ['tenant-a']);
    const bob = await t.user('bob', ['tenant-b']);
    const as = (o: Parameters<TestApp['admin']>[0]) => t.as(alice.token, o);
    const zero = { groups_owned: 0, devices_bound: 0, groups_open: 0, contexts: 0, ioas: 0, hwpts: 0, mappings: 0, pinned_bytes: 0 };
    expect(await holdings(alice.id)).toEqual(zero);

    const ctx = (await as({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
    const ioas = (await as({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx } })).json().id;
    expect((await as({ method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: ctx } })).statusCode).toBe(200);
    expect((await as({ method: 'POST', url: '/v1/devices/0000:02:01.0/attach', payload: { ptId: ioas } })).statusCode).toBe(200);
    for (const [iova, length] of [['0x100000', '0x1000'], ['0x200000', '0x2000']]) {
      expect((await as({ method: 'POST', url: `/v1/ioas/${ioas}/mappings`, payload: { iova, length, userAddress: iova } })).statusCode).toBe(201);
    }
    expect(await holdings(alice.id)).toEqual({ groups_owned: 1, devices_bound: 1, groups_open: 0, contexts: 1, ioas: 1, hwpts: 1, mappings: 2, pinned_bytes: 0x3000 });
    expect(await holdings(bob.id)).toEqual(zero);

    expect((await as({ method: 'DELETE', url: `/v1/contexts/${ctx}` })).statusCode).toBe(204);
    expect(await holdings(alice.id)).toEqual(zero);
  });

  it('drop a deleted principal', async () => {
    const carol = await t.user('carol');
    expect(await sample('ioasd_contexts', { principal: carol.id })).toBe(0);
    expect((await t.admin({ method: 'DELETE', url: `/v1/principals/${carol.id}` })).statusCode).toBe(204);
    expect(await sample('ioasd_contexts', { principal: carol.id })).toBeUndefined();
  });
});

describe('holdings gauges (group-first)', () => {
  it('count open groups and the groups they own', async () => {
    expect((await t.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy: 'group-first' } })).statusCode).toBe(200);
    const alice = await t.user('alice', ['tenant-a', 'tenant-b']);
    const as = (o: Parameters<TestApp['admin']>[0]) => t.as(alice.token, o);
    const ctx = (await as({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
    for (const g of [3, 4]) expect((await as({ method: 'POST', url: `/v1/groups/${g}/open`, payload: { contextId: ctx } })).statusCode).toBe(200);
    expect(await holdings(alice.id)).toMatchObject({ groups_owned: 2, groups_open: 2, devices_bound: 0, contexts: 1 });
  });
});

describe('refusal counter', () => {
  it('counts problem answers by errno, method and route pattern, not raw URL', async () => {
    const alice = await t.user('alice', ['tenant-a']);
    const ctx = (await t.as(alice.token, { method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
    // Group 1 holds the GPU's audio function on its kernel driver: EPERM, twice.
    for (let i = 0; i < 2; i++) {
      expect((await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:01:00.0/bind', payload: { contextId: ctx } })).statusCode).toBe(409);
    }
    await t.as(alice.token, { url: '/v1/ioas/41' });
    await t.as(alice.token, { url: '/v1/ioas/42' });
    await t.app.inject({ url: '/v1/groups' });
    await t.admin({ url: '/v1/nowhere' });
    await t.admin({ url: '/v1/groups/0x1' });
    expect(await sample('ioasd_refusals_total', { errno: 'EPERM', method: 'POST', route: '/v1/devices/:id/bind' })).toBe(2);
    expect(await sample('ioasd_refusals_total', { errno: 'ENOENT', method: 'GET', route: '/v1/ioas/:id' })).toBe(2);
    expect(await sample('ioasd_refusals_total', { errno: 'EACCES', method: 'GET', route: '/v1/groups' })).toBe(1);
    expect(await sample('ioasd_refusals_total', { errno: 'ENOENT', method: 'GET', route: '(no route)' })).toBe(1);
    expect(await sample('ioasd_refusals_total', { errno: 'EINVAL', method: 'GET', route: '/v1/groups/:id' })).toBe(1);
    const text = (await t.app.inject({ url: '/metrics' })).body;
    expect(text).not.toContain('/v1/ioas/41');
    // Successes are not refusals.
    expect(text).not.toMatch(/ioasd_refusals_total\{[^}]*route="\/v1\/contexts"/);
  });
});

describe('request durations', () => {
  it('http_request_duration_seconds counts routed requests by method, route pattern and status; HEAD, OPTIONS and unknown paths are left out', async () => {
    await t.app.inject({ url: '/healthz' });
    await t.app.inject({ url: '/healthz' });
    await t.app.inject({ method: 'HEAD', url: '/healthz' });
    await t.app.inject({ method: 'OPTIONS', url: '/healthz' });
    await t.admin({ url: '/v1/ioas/41' });
    await t.admin({ url: '/v1/nowhere' });
    const text = (await t.app.inject({ url: '/metrics' })).body;
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(await sample('http_request_duration_seconds_count', { method: 'GET', route: '/healthz', status_code: '200' })).toBe(2);
    expect(await sample('http_request_duration_seconds_count', { method: 'GET', route: '/v1/ioas/:id', status_code: '404' })).toBe(1);
    expect(await sample('http_request_duration_seconds_bucket', { le: '+Inf', method: 'GET', route: '/healthz', status_code: '200' })).toBe(2);
    const sum = await sample('http_request_duration_seconds_sum', { method: 'GET', route: '/healthz', status_code: '200' });
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(60);
    expect(text).not.toMatch(/http_request_duration_seconds\w*\{[^}]*method="(HEAD|OPTIONS)"/);
    expect(text).not.toContain('/v1/nowhere');
    expect(text).not.toContain('/v1/ioas/41');
  });

  it('the process and runtime metrics of prom-client are there', async () => {
    const text = (await t.app.inject({ url: '/metrics' })).body;
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) expect(text).toContain(`# TYPE ${name} `);
  });
});

describe('the request histogram', () => {
  it("is written exactly as prom-client's own Histogram with the same observations", async () => {
    const { client } = t.app.metrics;
    const observation = fc.record({
      method: fc.constantFrom('GET', 'POST', 'DELETE'),
      route: fc.constantFrom('/healthz', '/v1/ioas/:id', '/v1/devices/:id/bind', '/a "quoted" \\ route'),
      status: fc.constantFrom(200, 201, 204, 404, 409),
      seconds: fc.oneof(fc.double({ min: 0, max: 20, noNaN: true }), fc.constantFrom(0, 0.005, 0.01, 2.5, 10)),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 40 }), async (observations) => {
        const ours = new client.Registry();
        const theirs = new client.Registry();
        const lean = new RouteHistogram('http_request_duration_seconds', 'request duration in seconds');
        ours.registerMetric(lean as unknown as Parameters<typeof ours.registerMetric>[0]);
        const reference = new client.Histogram({ name: 'http_request_duration_seconds', help: 'request duration in seconds', labelNames: ['method', 'route', 'status_code'], registers: [theirs] });
        for (const o of observations) {
          lean.observe(o.method, o.route, o.status, o.seconds);
          reference.observe({ method: o.method, route: o.route, status_code: o.status }, o.seconds);
        }
        expect(await ours.metrics()).toBe(await theirs.metrics());
        expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
        ours.resetMetrics();
        theirs.resetMetrics();
        expect(await ours.metrics()).toBe(await theirs.metrics());
      }),
      { numRuns: 200 },
    );
  });
});
