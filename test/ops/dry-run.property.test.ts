import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../../src/core/check.js';
import type { App } from '../../src/app.js';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';

/**
 * A dry run never disagrees with the real call: on random states, every dry-runnable route is asked
 * first with ?dryRun=true (nothing may change: memory, database, events, audit), then for real on the
 * same state. A refusal must be the same refusal; a success must be a success whose committed events
 * are what the effects announced.
 */
const DEVICES = ['0000:01:00.0', '0000:01:00.1', '0000:02:01.0', '0000:02:01.1', '0000:04:00.0', '0000:06:00.0', 'c0ffee00-0000-4000-8000-000000000001', '0000:05:00.0', '0000:03:00.0'];
const GROUPS = [1, 3, 4, 9, 10, 11, 100, 7];
const DRIVERS = ['vfio-pci', 'nvme', 'none', 'i915'];

type Who = 0 | 1;
type Step =
  | { k: 'context'; p: Who }
  | { k: 'ioas'; p: Who; c: number }
  | { k: 'map'; p: Who; pt: number }
  | { k: 'bind' | 'unbind'; p: Who; c: number; d: number }
  | { k: 'attach'; p: Who; d: number; pt: number }
  | { k: 'open' | 'close' | 'uncontain'; p: Who; c: number; g: number }
  | { k: 'contain'; p: Who; g: number; pt: number }
  | { k: 'driver' | 'unplug'; d: number; driver: number }
  | { k: 'deleteIoas'; p: Who; pt: number }
  | { k: 'deleteContext'; p: Who; c: number }
  | { k: 'policy'; to: 'group-first' | 'device-first' };

const who = fc.constantFrom<Who>(0, 1);
const c = fc.nat(3);
const d = fc.nat(DEVICES.length - 1);
const g = fc.nat(GROUPS.length - 1);
const pt = fc.integer({ min: 1, max: 6 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('context' as const), p: who }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('ioas' as const), p: who, c }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('map' as const), p: who, pt }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constantFrom('bind' as const, 'unbind' as const), p: who, c, d }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('attach' as const), p: who, d, pt }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constantFrom('open' as const, 'close' as const, 'uncontain' as const), p: who, c, g }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('contain' as const), p: who, g, pt }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('driver' as const, 'unplug' as const), d, driver: fc.nat(DRIVERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('deleteIoas' as const), p: who, pt }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('deleteContext' as const), p: who, c }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('policy' as const), to: fc.constantFrom<'group-first' | 'device-first'>('group-first', 'device-first') }) },
);

interface Req {
  token: string;
  method: 'POST' | 'PUT' | 'DELETE';
  url: string;
  payload?: object;
  dryRunnable: boolean;
}

let t: TestApp;
let tokens: string[] = [];
let demo: object;

function request(s: Step, contexts: string[][]): Req {
  const token = 'p' in s ? tokens[s.p]! : ADMIN_TOKEN;
  const ctx = 'c' in s && 'p' in s ? (contexts[s.p]![s.c % Math.max(1, contexts[s.p]!.length)] ?? 'ctx-none') : 'ctx-none';
  switch (s.k) {
    case 'context':
      return { token, method: 'POST', url: '/v1/contexts', payload: {}, dryRunnable: false };
    case 'ioas':
      return { token, method: 'POST', url: '/v1/ioas', payload: { contextId: ctx }, dryRunnable: false };
    case 'map':
      return { token, method: 'POST', url: `/v1/ioas/${s.pt}/mappings`, payload: { iova: '0x200000', length: '0x1000', userAddress: '0x0', read: true, write: true }, dryRunnable: false };
    case 'bind':
      return { token, method: 'POST', url: `/v1/devices/${DEVICES[s.d]}/bind`, payload: { contextId: ctx }, dryRunnable: true };
    case 'unbind':
      return { token, method: 'POST', url: `/v1/devices/${DEVICES[s.d]}/unbind`, dryRunnable: true };
    case 'attach':
      return { token, method: 'POST', url: `/v1/devices/${DEVICES[s.d]}/attach`, payload: { ptId: s.pt }, dryRunnable: true };
    case 'open':
      return { token, method: 'POST', url: `/v1/groups/${GROUPS[s.g]}/open`, payload: { contextId: ctx }, dryRunnable: true };
    case 'close':
      return { token, method: 'POST', url: `/v1/groups/${GROUPS[s.g]}/close`, dryRunnable: true };
    case 'contain':
      return { token, method: 'PUT', url: `/v1/groups/${GROUPS[s.g]}/container`, payload: { ioasId: s.pt }, dryRunnable: true };
    case 'uncontain':
      return { token, method: 'DELETE', url: `/v1/groups/${GROUPS[s.g]}/container`, dryRunnable: true };
    case 'driver':
      return { token, method: 'PUT', url: `/v1/devices/${DEVICES[s.d]}/driver`, payload: { driver: DRIVERS[s.driver] }, dryRunnable: true };
    case 'unplug':
      return { token, method: 'DELETE', url: `/v1/devices/${DEVICES[s.d]}`, dryRunnable: true };
    case 'deleteIoas':
      return { token, method: 'DELETE', url: `/v1/ioas/${s.pt}`, dryRunnable: true };
    case 'deleteContext':
      return { token, method: 'DELETE', url: `/v1/contexts/${ctx}`, dryRunnable: true };
    case 'policy':
      return { token, method: 'PUT', url: '/v1/system/policy', payload: { policy: s.to }, dryRunnable: true };
  }
}

/** Everything a dry run must leave as it was. */
function fingerprint(app: App): string {
  const s = app.ioasd;
  return JSON.stringify({
    objects: [...snapshot(s).entries()],
    devices: s.store.listDevices(),
    policy: s.engine.policy,
    events: s.store.eventBounds(),
    audit: s.store.listAudit({ limit: 1_000_000 }).length,
  }, (_, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v));
}

const send = (r: Req, dry: boolean) =>
  t.as(r.token, { method: r.method, url: dry ? `${r.url}?dryRun=true` : r.url, ...(r.payload ? { payload: r.payload } : {}) });

/** The effects a committed change's events stand for, counted by kind (the real call's side). */
function committedKinds(types: string[]): Record<string, number> {
  const map: Record<string, string> = {
    'group.claimed': 'group-claimed',
    'group.released': 'group-released',
    'device.driver-changed': 'driver-changed',
    'device.removed': 'device-removed',
    'hwpt.created': 'hwpt-created',
    'hwpt.deleted': 'hwpt-destroyed',
    'context.deleted': 'context-released',
  };
  const out: Record<string, number> = {};
  for (const type of types) if (map[type]) out[map[type]] = (out[map[type]] ?? 0) + 1;
  const removed = types.filter((x) => x === 'mapping.removed').length;
  if (removed > 0) out['mappings-dropped (mappings)'] = removed;
  return out;
}

function announcedKinds(effects: { kind: string; count?: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of effects) {
    if (e.kind === 'mappings-dropped') out['mappings-dropped (mappings)'] = (out['mappings-dropped (mappings)'] ?? 0) + e.count!;
    else if (['group-claimed', 'group-released', 'driver-changed', 'device-removed', 'hwpt-created', 'hwpt-destroyed', 'context-released'].includes(e.kind)) out[e.kind] = (out[e.kind] ?? 0) + 1;
  }
  return out;
}

let compared = 0;
let succeeded = 0;

beforeAll(async () => {
  t = await testApp({ leaseCheckMs: 0 });
  tokens = [(await t.user('alice', ['tenant-a', 'shared'])).token, (await t.user('bob', ['tenant-a', 'tenant-b', 'shared'])).token];
  demo = (await t.admin({ method: 'GET', url: '/v1/topology' })).json();
});
afterAll(async () => {
  await t.close();
});

async function reset(policy: 'group-first' | 'device-first'): Promise<void> {
  // Back to a clean state between runs: every context goes, the demo inventory and the policy come back.
  for (const ctx of t.app.ioasd.contexts.list({ id: 'admin', role: 'admin' })) await t.admin({ method: 'DELETE', url: `/v1/contexts/${ctx.id}` });
  expect((await t.admin({ method: 'PUT', url: '/v1/topology', payload: demo })).statusCode).toBe(200);
  expect((await t.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy } })).statusCode).toBe(200);
}

async function scenario(policy: 'group-first' | 'device-first', steps: Step[]): Promise<void> {
  await reset(policy);
  const contexts: string[][] = [[], []];
  for (const s of steps) {
    const r = request(s, contexts);
    if (r.dryRunnable) {
      const before = fingerprint(t.app);
      const dry = await send(r, true);
      expect(dry.statusCode, `${r.method} ${r.url}?dryRun=true: ${dry.body}`).toBeLessThan(500);
      expect(fingerprint(t.app), `${r.method} ${r.url}?dryRun=true changed something`).toBe(before);
      const seq = t.app.ioasd.store.eventBounds().newest;
      const real = await send(r, false);
      compared++;
      if (dry.statusCode >= 400) {
        const { requestId: _a, instance: _b, ...dryProblem } = dry.json();
        const { requestId: _c, instance: _d, ...realProblem } = real.json();
        expect({ status: real.statusCode, ...realProblem }, `${r.method} ${r.url}`).toEqual({ status: dry.statusCode, ...dryProblem });
      } else {
        succeeded++;
        expect(dry.statusCode).toBe(200);
        expect(dry.json().dryRun).toBe(true);
        expect(real.statusCode, `${r.method} ${r.url}: dry run said yes, real call said ${real.body}`).toBeLessThan(300);
        const types = t.app.ioasd.store.eventsAfter(seq, 100_000).map((e) => e.type);
        expect(announcedKinds(dry.json().effects), `${r.method} ${r.url}: effects vs committed ${types.join(',')}`).toEqual(committedKinds(types));
      }
    } else {
      const res = await send(r, false);
      expect(res.statusCode).toBeLessThan(500);
      if (s.k === 'context' && res.statusCode === 201) contexts[s.p]!.push(res.json().id);
    }
  }
  expect(t.app.ioasd.check()).toMatchObject({ ok: true, violations: [] });
}

describe('dry runs against the real call on random states', () => {
  it('device-first', async () => {
    await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 5, maxLength: 30 }), (steps) => scenario('device-first', steps)), { numRuns: Number(process.env.DRY_RUNS ?? 30) });
  });

  it('group-first', async () => {
    await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 5, maxLength: 30 }), (steps) => scenario('group-first', steps)), { numRuns: Number(process.env.DRY_RUNS ?? 30) });
  });

  it('compared many calls, and many of them went through', () => {
    expect(compared).toBeGreaterThan(200);
    expect(succeeded).toBeGreaterThan(30);
  });
});
