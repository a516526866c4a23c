import fc from 'fast-check';
import type { FastifySerializerCompiler, InjectOptions } from 'fastify';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { hex } from '../../src/core/u64.js';
import { DryRunReply } from '../../src/http/mutation.js';
import { CONTEXT_PLACEHOLDER, PRINCIPAL_PLACEHOLDER, TRY_IT_ORDER } from '../../src/http/schemas/examples.js';
import type * as SerializerModuleNs from '../../src/http/serializer.js';
import { HexU64 } from '../../src/schemas/u64.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { HOSTS } from '../fixtures/sysfs/hosts.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';
import { exampleRequest, injectAnswer, isEventStream, operationsOf, type OpenApiDoc, type Operation } from './openapi-doc.js';

/**
 * The compiled response serializer (src/http/serializer.ts) against the one it replaced
 * (fastify-type-provider-zod's: the route's zod schema encodes the value, JSON.stringify writes it),
 * on real answers: every value any route hands to its serializer while the examples, their dry runs,
 * both policies, a user's view, PASIDs, nested hwpts and every fixture host run is written by both,
 * and the texts must be the same, byte for byte. zod refusing a value (the old 500) fails too.
 * Every route and status with a response schema must be met at least once.
 */

type SerializerModule = typeof SerializerModuleNs;

interface Serialized {
  route: string;
  value: unknown;
  fast: string;
  zod: string;
}

const seen = vi.hoisted(() => ({ compiled: new Set<string>(), calls: [] as Serialized[] }));

vi.mock('../../src/http/serializer.js', async (importOriginal) => {
  const real = await importOriginal<SerializerModule>();
  const { serializerCompiler: zodSerializerCompiler } = await import('fastify-type-provider-zod');
  return {
    ...real,
    responseSerializerCompiler: (def: Parameters<FastifySerializerCompiler<unknown>>[0]) => {
      const route = `${def.method} ${def.url} ${def.httpStatus}${def.contentType ? ` ${def.contentType}` : ''}`;
      seen.compiled.add(route);
      const fast = real.responseSerializerCompiler(def);
      const zod = zodSerializerCompiler(def as Parameters<typeof zodSerializerCompiler>[0]);
      return (value: unknown) => {
        const text = fast(value);
        let reference: string;
        try {
          reference = zod(value);
        } catch (err) {
          reference = `zod refused: ${String((err as Error).cause ?? err)}`;
        }
        seen.calls.push({ route, value, fast: text, zod: reference });
        return text;
      };
    },
  };
});

/** Routes and statuses whose schema never serializes a body, and why. */
const NEVER_SERIALIZED: Record<string, string> = {
  'GET /v1/events 200': 'an event stream, written by @fastify/sse',
  'GET /v1/system/backup 200': 'a file, sent as a stream',
  'HEAD /v1/system/backup 200': 'the same file (its headers)',
};
const isNoContent = (route: string) => / 204$/.test(route);

const trees = fixtureTrees();
afterAll(() => trees.remove());

const setup = await testApp();
const doc = (await setup.app.inject({ url: '/openapi.json' })).json() as OpenApiDoc;
await setup.close();
const operations = operationsOf(doc);
const byId = new Map(operations.map((o) => [o.operationId, o]));
const reads = operations.filter((o) => o.method === 'GET' && !isEventStream(o));
const takesDryRun = (op: Operation) => op.parameters.some((p) => p.in === 'query' && p.name === 'dryRun');

const DSA = '0000:06:00.0';
const AUDIO = '0000:01:00.1';

/** Runs the scenario on one app: every GET (as the admin and as a user) after each change. */
function driver(t: TestApp, user: { token: string }) {
  const ids: Record<string, string> = {};
  const replace = (v: unknown) => (v === CONTEXT_PLACEHOLDER ? ids.context : v === PRINCIPAL_PLACEHOLDER ? ids.principal : v);
  const as = (token: string, req: InjectOptions) => t.as(token, req);
  const readAll = async () => {
    for (const token of [ADMIN_TOKEN, user.token]) {
      for (const op of reads) await as(token, exampleRequest(op, replace));
      // A page that is not the last: nextCursor is a value, not null.
      await as(token, { url: '/v1/ioas/1/mappings?limit=1' });
      for (const kind of ['hwpts', 'contexts', 'ioas'] as const) {
        const list = await as(token, { url: `/v1/${kind}` });
        if (list.statusCode === 200) for (const { id } of list.json() as { id: string | number }[]) await as(token, { url: `/v1/${kind}/${id}` });
      }
    }
  };
  const run = async (op: Operation) => {
    if (takesDryRun(op)) {
      const dry = exampleRequest(op, replace);
      dry.url += `${String(dry.url).includes('?') ? '&' : '?'}dryRun=true`;
      await t.admin(dry);
    }
    const res = await injectAnswer(t.app, { ...exampleRequest(op, replace), headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, isEventStream(op));
    expect(res.statusCode, `${op.operationId}: ${res.body}`).toBeLessThan(300);
    if (op.operationId === 'createContext') ids.context = (res.json() as { id: string }).id;
    if (op.operationId === 'createPrincipal') ids.principal = (res.json() as { id: string }).id;
    await readAll();
  };
  return { run, readAll, call: (method: InjectOptions['method'], url: string, payload?: object) => t.admin({ method, url, ...(payload ? { payload } : {}) }) };
}

describe('compiled response serializer', () => {
  it('writes every real answer exactly as the zod serializer did, on every route with a response schema', async () => {
    const t = await testApp();
    try {
      const viewer = await t.user('viewer', ['tenant-a']);
      const { run, readAll, call } = driver(t, viewer);
      for (const id of TRY_IT_ORDER.deviceFirst) await run(byId.get(id)!);

      // PASIDs and a nested hwpt with stage-1 data, attached.
      await call('PUT', `/v1/devices/${AUDIO}/driver`, { driver: 'vfio-pci' });
      const ctx = (await call('POST', '/v1/contexts', {})).json().id as string;
      const space = (await call('POST', '/v1/ioas', { contextId: ctx })).json().id as number;
      expect((await call('POST', `/v1/devices/${DSA}/bind`, { contextId: ctx })).statusCode).toBe(200);
      const parent = (await call('POST', '/v1/hwpts', { deviceId: DSA, ptId: space, nestParent: true, pasid: true })).json().id as number;
      const nested = await call('POST', '/v1/hwpts', { deviceId: DSA, parentId: parent, data: { stage1: 'vtd', pgd: '0x1000', levels: [4, 5], extra: null }, pasid: true });
      expect(nested.statusCode, nested.body).toBe(201);
      expect((await call('POST', `/v1/devices/${DSA}/attach`, { ptId: nested.json().id })).statusCode).toBe(200);
      expect((await call('POST', `/v1/devices/${DSA}/attach`, { ptId: parent, pasid: 3 })).statusCode).toBe(200);
      await call('POST', `/v1/ioas/${space}/mappings`, { iova: '0x100000', length: '0x1000', userAddress: '0x7f0000000000' });
      await call('POST', `/v1/devices/${DSA}/detach?dryRun=true`, { pasid: 3 });
      await readAll();
      await call('DELETE', `/v1/contexts/${ctx}?dryRun=true`);
      await call('DELETE', `/v1/contexts/${ctx}`);

      const toGroupFirst = await call('PUT', '/v1/system/policy', { policy: 'group-first' });
      expect(toGroupFirst.statusCode).toBe(200);
      for (const id of TRY_IT_ORDER.groupFirst) await run(byId.get(id)!);
    } finally {
      await t.close();
    }

    // Real hosts: isolation warnings, host warnings, devices without a group, a rescan.
    let hostsStarted = 0;
    for (const host of HOSTS) {
      const tree = trees.fresh(host);
      const scan = () => readSysfsTopology(tree.sys, { proc: tree.proc });
      let topology;
      try {
        topology = scan();
      } catch {
        continue; // a host the loader refuses (no IOMMU groups) starts no server
      }
      const h = await testApp({ topology, hostScan: scan });
      hostsStarted++;
      try {
        const user = await h.user('bob', ['tenant-a']);
        const { readAll, call } = driver(h, user);
        await readAll();
        await call('POST', '/v1/topology/rescan?dryRun=true');
        await call('POST', '/v1/topology/rescan');
        await call('PUT', '/v1/topology?dryRun=true', (await call('GET', '/v1/topology')).json());
      } finally {
        await h.close();
      }
    }

    expect(hostsStarted).toBeGreaterThanOrEqual(HOSTS.length - 1);
    const mismatches = seen.calls.filter((c) => c.fast !== c.zod);
    expect(mismatches.slice(0, 5).map(({ route, fast, zod }) => ({ route, fast, zod }))).toEqual([]);
    // The handlers build exactly what their schema declares, in its order: a field a view adds and
    // the schema lacks (which both serializers would drop) fails here.
    const undeclared = seen.calls.filter((c) => c.fast !== JSON.stringify(c.value));
    expect(undeclared.slice(0, 5).map(({ route, fast, value }) => ({ route, fast, plain: JSON.stringify(value) }))).toEqual([]);

    // A HEAD route is Fastify's copy of its GET, with the GET's schema objects (compiled once).
    const met = new Set(seen.calls.flatMap((c) => [c.route, c.route.replace(/^GET /, 'HEAD ')]));
    const missed = [...seen.compiled].filter((r) => !r.includes('application/problem+json') && !met.has(r) && !isNoContent(r) && !(r in NEVER_SERIALIZED));
    expect(missed).toEqual([]);
    for (const r of Object.keys(NEVER_SERIALIZED)) expect(met.has(r), r).toBe(false);
    expect(seen.calls.length).toBeGreaterThan(1000);
  });
});

describe('compiled response serializer on generated values', () => {
  // Every shape the response schemas use, and the awkward values of each: strings needing escapes
  // (quotes, backslashes, control characters, lone surrogates, U+2028), keys the schema does not
  // declare (dropped, as zod drops them), an optional field before required ones, loose objects and
  // records with keys in any order (numeric-looking ones too), nullable objects, unknown values, and
  // a union with DryRunReply. One known difference is left out: a loose object's undeclared key that
  // looks like an array index ("0") comes first in zod's copy (JavaScript's own-key order) and after
  // the declared ones here; the only loose objects, a dry run's effects, have named keys.
  const unit = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', '\ud83d\ude00', 'é', 'a'),
  );
  const text = fc.string({ unit, maxLength: 60 });
  const key = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
  const Item = z.object({ a: z.string(), opt: z.string().optional(), b: z.number().int(), n: z.string().nullable(), hex: HexU64, on: z.boolean() });
  const Loose = z.looseObject({ kind: z.string() });
  const Outer = z.object({
    items: z.array(Item),
    counts: z.record(z.string(), z.number().int()),
    effects: z.array(Loose),
    maybe: Item.nullable(),
    anything: z.unknown().optional(),
    flag: z.literal(true),
    e: z.enum(['x', 'y']),
    num: z.number(),
    ids: z.array(z.number().int()),
  });
  const Answer = z.union([Outer, DryRunReply]);

  /** An object with its keys in a random order, and sometimes a key no schema declares. */
  const shuffled = <T extends object>(arb: fc.Arbitrary<T>) =>
    fc.tuple(arb, fc.option(fc.tuple(key.map((k) => `x${k}`), fc.jsonValue()), { nil: undefined }), fc.infiniteStream(fc.double())).map(([o, extra, rnd]) => {
      const entries = Object.entries(o);
      if (extra) entries.push(extra);
      const order = [...entries.keys()].map((i) => [i, rnd.next().value] as const).sort((x, y) => x[1] - y[1]);
      return Object.fromEntries(order.map(([i]) => entries[i]!)) as T;
    });
  const item = shuffled(
    fc.record(
      { a: text, opt: text, b: fc.integer(), n: fc.option(text, { nil: null }), hex: fc.bigInt(0n, 2n ** 64n - 1n).map(hex), on: fc.boolean() },
      { requiredKeys: ['a', 'b', 'n', 'hex', 'on'] },
    ),
  );
  const effect = fc.tuple(text, fc.dictionary(key, fc.jsonValue(), { maxKeys: 4 }), fc.boolean()).map(([kind, rest, first]) => (first ? { kind, ...rest } : { ...rest, kind }));
  const outer = shuffled(
    fc.record(
      {
        items: fc.array(item, { maxLength: 4 }),
        counts: fc.dictionary(fc.oneof(key, fc.nat(99).map(String)), fc.integer(), { maxKeys: 5 }),
        effects: fc.array(effect, { maxLength: 3 }),
        maybe: fc.option(item, { nil: null }),
        anything: fc.jsonValue(),
        flag: fc.constant(true as const),
        e: fc.constantFrom('x' as const, 'y' as const),
        num: fc.double({ noNaN: true, noDefaultInfinity: true }),
        ids: fc.array(fc.maxSafeInteger()),
      },
      { requiredKeys: ['items', 'counts', 'effects', 'maybe', 'flag', 'e', 'num', 'ids'] },
    ),
  );
  const dryRun = fc.record({ dryRun: fc.constant(true as const), effects: fc.array(effect, { maxLength: 3 }) });

  it('writes what the zod serializer writes', async () => {
    const { responseSerializerCompiler } = await vi.importActual<SerializerModule>('../../src/http/serializer.js');
    const { serializerCompiler: zodSerializerCompiler } = await import('fastify-type-provider-zod');
    const def = { method: 'GET', url: '/x', httpStatus: '200' };
    const fast = responseSerializerCompiler({ ...def, schema: Answer });
    const zod = zodSerializerCompiler({ ...def, schema: Answer } as Parameters<typeof zodSerializerCompiler>[0]);
    fc.assert(
      fc.property(fc.oneof(outer, dryRun), (value) => {
        expect(fast(value)).toBe(zod(value));
      }),
      { numRuns: 500 },
    );
  });
});
