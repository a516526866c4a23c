import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';
import { injectAnswer, isEventStream, operationsOf, type JsonSchema, type OpenApiDoc, type Operation } from './openapi-doc.js';

/**
 * A fuzz test generated from the served OpenAPI document: requests to every operation, their
 * parameters and bodies drawn from the operation's own JSON schemas (so most get past validation
 * and reach the rules), mixed with ids of objects that exist, boundary u64 values and junk (wrong
 * types, unknown fields and parameters, other methods and media types, deep nesting, bad tokens).
 * Whatever comes: never a 5xx, every refusal is problem+json, and a refused request changes nothing
 * that any GET shows.
 */

const setup = await testApp();
const doc = (await setup.app.inject({ url: '/openapi.json' })).json() as OpenApiDoc;
await setup.close();
const operations = operationsOf(doc);
/** Paths of the event streams: a GET there that is let through stays open, so it is read as a client would and closed. */
const STREAM_PATHS = new Set(operations.filter(isEventStream).map((op) => op.path));
const opensStream = (req: InjectOptions) => req.method === 'GET' && STREAM_PATHS.has(String(req.url).split('?')[0]!);

const DEVICES = [
  '0000:01:00.0', '0000:01:00.1', '0000:02:00.0', '0000:02:01.0', '0000:02:01.1', '0000:02:01.2', '0000:02:01.3', '0000:03:00.0',
  '0000:00:14.0', '0000:00:17.0', '0000:04:00.0', '0000:04:00.1', '0000:05:00.0', '0000:06:00.0',
  'c0ffee00-0000-4000-8000-000000000001', 'c0ffee00-0000-4000-8000-000000000002',
];
const U64_EDGES = ['0x0', '0x1000', '0x100000', '0x200000', '0xfee00000', '0xffffffffffff', '0xffffffffffffffff', '0x10000000000000000', '18446744073709551615', '18446744073709551616', 0, 4096, 9007199254740991];

/** Objects the fuzzed requests can name: placeholders, replaced by the ids {@link seed} made. */
interface Known {
  contexts: string[];
  principals: string[];
  userToken: string;
}
const KNOWN: Known = { contexts: ['{ctx0}', '{ctx1}'], principals: ['{user}'], userToken: '{userToken}' };

/** Values worth trying for a field or parameter of this name, beside what its schema generates. */
function pool(name: string | undefined, known: Known): fc.Arbitrary<unknown> | undefined {
  switch (name) {
    case 'contextId':
      return fc.constantFrom(...known.contexts, 'ctx-000000000000');
    case 'deviceId':
      return fc.constantFrom(...DEVICES);
    case 'ioasId':
    case 'ptId':
    case 'parentId':
    case 'srcIoasId':
      return fc.integer({ min: 0, max: 6 });
    case 'iova':
    case 'length':
    case 'userAddress':
    case 'srcIova':
    case 'dstIova':
    case 'start':
    case 'last':
    case 'cursor':
      return fc.constantFrom(...U64_EDGES);
    case 'data':
      // A stage-1 table description nested from harmless to far deeper than JSON.stringify can go:
      // a marker here, spliced into the body's text by {@link withDeepData}.
      return fc.integer({ min: 1, max: 12_000 }).map((n) => `__deep_${n}__`);
    default:
      return undefined;
  }
}

function resolve(schema: JsonSchema): JsonSchema {
  const ref = schema.$ref as string | undefined;
  return ref ? resolve(doc.components.schemas[ref.replace('#/components/schemas/', '')]!) : schema;
}

/** An arbitrary for values a JSON schema admits (mostly), depth-bounded. */
function fromSchema(raw: JsonSchema, known: Known, name?: string, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolve(raw);
  const own = pool(name, known);
  const base = ((): fc.Arbitrary<unknown> => {
    if ('const' in schema) return fc.constant(schema.const);
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
    const union = (schema.oneOf ?? schema.anyOf) as JsonSchema[] | undefined;
    if (union) return fc.oneof(...union.map((s) => fromSchema(s, known, name, depth)));
    const type = schema.type;
    if (Array.isArray(type)) return fc.oneof(...type.map((t) => fromSchema({ ...schema, type: t }, known, name, depth)));
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
      case 'number': {
        const min = Math.max(Number(schema.minimum ?? -(2 ** 31)), Number.MIN_SAFE_INTEGER);
        const max = Math.min(Number(schema.maximum ?? 2 ** 31), Number.MAX_SAFE_INTEGER);
        return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max));
      }
      case 'string':
        if (typeof schema.pattern === 'string') return fc.stringMatching(new RegExp(schema.pattern));
        return fc.string({ minLength: Number(schema.minLength ?? 0), maxLength: Math.min(Number(schema.maxLength ?? 20), 40) });
      case 'array':
        if (depth > 4) return fc.constant([]);
        return fc.array(fromSchema((schema.items as JsonSchema | undefined) ?? {}, known, undefined, depth + 1), { maxLength: Math.min(Number(schema.maxItems ?? 3), 3) });
      case 'object': {
        const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
        if (depth > 4 || Object.keys(props).length === 0) return fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
        const required = (schema.required ?? []) as string[];
        const record = fc.record(
          Object.fromEntries(Object.entries(props).map(([k, s]) => [k, fromSchema(s, known, k, depth + 1)])),
          { requiredKeys: required.filter((k) => k in props) as never[] },
        );
        // Now and then an unknown field, or a required one missing.
        return fc.oneof(
          { weight: 8, arbitrary: record },
          { weight: 1, arbitrary: record.map((r) => ({ ...(r as object), unexpected: 1 })) },
          { weight: 1, arbitrary: record.map((r) => Object.fromEntries(Object.entries(r as object).slice(1))) },
        );
      }
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  })();
  return own ? fc.oneof({ weight: 3, arbitrary: own }, { weight: 2, arbitrary: base }) : base;
}

const junkText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('0x1', '1e0', '+1', '01', '-1', ' ', '%00', '..', 'a'.repeat(200), '%E0%A4%A'),
);

/** A path or query parameter value: from its schema, a known object, or junk. */
function paramValue(p: Operation['parameters'][number], known: Known): fc.Arbitrary<string> {
  const ids: Record<string, string[]> = {
    id: ['1', '2', '3', '4', '100', 'admin', ...known.contexts, ...known.principals, ...DEVICES],
    deviceId: DEVICES,
  };
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.constantFrom(...(ids[p.name] ?? ['1'])) },
      { weight: 3, arbitrary: fromSchema(p.schema ?? {}, known, p.name) },
      { weight: 1, arbitrary: junkText },
    )
    .map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
}

const nestedText = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
/** Replaces each deep-data marker of a JSON text with an object nested that many levels. */
const withDeepData = (text: string) => text.replace(/"__deep_(\d+)__"/g, (_, n: string) => nestedText(Number(n)));

/** `arb` one time in `n`, else undefined. */
const rarely = <T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

const deepJson = fc.integer({ min: 65, max: 3000 }).map(nestedText);
const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

function requestFor(op: Operation, known: Known): fc.Arbitrary<InjectOptions & { headers: Record<string, string> }> {
  const params = op.parameters.filter((p) => p.in === 'path');
  const queries = op.parameters.filter((p) => p.in === 'query');
  return fc
    .record({
      path: fc.tuple(...params.map((p) => paramValue(p, known))),
      query: fc.tuple(...queries.map((p) => fc.option(paramValue(p, known), { nil: undefined }))),
      extraQuery: rarely(fc.constantFrom('dryrun=true', 'x=1', 'mode=merge'), 10),
      body: op.body
        ? fc.oneof(
            { weight: 8, arbitrary: fromSchema(op.body.schema, known).map((b) => withDeepData(JSON.stringify(b))) },
            { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((b) => JSON.stringify(b)) },
            { weight: 1, arbitrary: deepJson },
            { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
          )
        : rarely(fc.jsonValue({ maxDepth: 2 }).map((b) => JSON.stringify(b)), 6),
      contentType: fc.oneof({ weight: 12, arbitrary: fc.constant('application/json') }, fc.constantFrom('application/json; charset=latin1', 'text/plain')),
      token: fc.oneof({ weight: 6, arbitrary: fc.constant('admin') }, { weight: 3, arbitrary: fc.constant('user') }, fc.constantFrom('none', 'bogus')),
      method: rarely(fc.constantFrom(...OTHER_METHODS), 12),
    })
    .map((r) => {
      let url = op.path;
      params.forEach((p, i) => (url = url.replace(`{${p.name}}`, encodeURIComponent(r.path[i]!))));
      const qs = new URLSearchParams();
      queries.forEach((p, i) => r.query[i] !== undefined && qs.set(p.name, r.query[i]!));
      let query = qs.toString();
      if (r.extraQuery) query = query ? `${query}&${r.extraQuery}` : r.extraQuery;
      const headers: Record<string, string> = {};
      if (r.token !== 'none') headers.authorization = `Bearer ${r.token === 'admin' ? '{admin}' : r.token === 'user' ? known.userToken : 'ioasd_bogus'}`;
      if (r.body !== undefined) headers['content-type'] = r.contentType;
      return {
        method: (r.method ?? op.method) as InjectOptions['method'],
        url: query ? `${url}?${query}` : url,
        headers,
        ...(r.body !== undefined ? { payload: r.body } : {}),
      };
    });
}

/** State worth fuzzing against: a user, a context with an ioas, a bound and attached device, a mapping, a manual hwpt. */
async function seed(t: TestApp): Promise<Record<string, string>> {
  const ok = async (opts: InjectOptions) => {
    const res = await t.admin(opts);
    expect(res.statusCode, `${opts.method} ${opts.url}: ${res.body}`).toBeLessThan(300);
    return res.body ? res.json() : undefined;
  };
  await ok({ method: 'PATCH', url: '/v1/principals/admin', payload: { clearances: ['tenant-a', 'tenant-b', 'shared'] } });
  const user = await t.user('fuzzer', ['tenant-b']);
  const ctx = (await ok({ method: 'POST', url: '/v1/contexts', payload: { name: 'fuzz' } })).id as string;
  const userCtx = (await t.as(user.token, { method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
  await ok({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx } });
  await ok({ method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: ctx } });
  await ok({ method: 'POST', url: '/v1/devices/0000:02:01.0/attach', payload: { ptId: 1 } });
  await ok({ method: 'POST', url: '/v1/ioas/1/mappings', payload: { iova: '0x100000', length: '0x200000', userAddress: '0x7f0000000000' } });
  await ok({ method: 'POST', url: '/v1/devices/0000:06:00.0/bind', payload: { contextId: ctx } });
  await ok({ method: 'POST', url: '/v1/hwpts', payload: { deviceId: '0000:06:00.0', ioasId: 1, nestParent: true, pasid: true } });
  return { '{ctx0}': ctx, '{ctx1}': userCtx, '{user}': user.id, '{userToken}': user.token };
}

/** Everything a refused request must leave as it was, as the admin's GETs show it. */
async function snapshot(t: TestApp, adminToken: string): Promise<unknown> {
  const get = async (url: string) => {
    const res = await t.as(adminToken, { url });
    expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    return res.json();
  };
  const ioas = (await get('/v1/ioas')) as { id: number }[];
  const mappings = [];
  for (const s of ioas) mappings.push(await get(`/v1/ioas/${s.id}/mappings?limit=10000`));
  // Refusals may one day be audited too; what must not appear is the record of a change.
  const audit = ((await get('/v1/audit?limit=1000')) as { action: string }[]).filter((a) => !/refus/.test(a.action));
  return {
    system: await get('/v1/system'),
    topology: await get('/v1/topology'),
    groups: await get('/v1/groups'),
    principals: await get('/v1/principals'),
    contexts: await get('/v1/contexts'),
    ioas,
    mappings,
    hwpts: await get('/v1/hwpts'),
    audit,
  };
}

/** The request with the placeholders replaced, in the URL (where they are percent-encoded), the headers and the body. */
function fill(req: InjectOptions & { headers: Record<string, string> }, ids: Record<string, string>): InjectOptions & { headers: Record<string, string> } {
  const sub = (text: string) => {
    for (const [k, v] of Object.entries(ids)) text = text.replaceAll(k, v).replaceAll(encodeURIComponent(k), encodeURIComponent(v));
    return text;
  };
  return {
    ...req,
    url: sub(String(req.url)),
    headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, sub(v)])),
    ...(req.payload !== undefined ? { payload: sub(String(req.payload)) } : {}),
  };
}

const anyRequest = fc.oneof(...operations.map((op) => requestFor(op, KNOWN)));

describe('fuzzing every operation of the OpenAPI document', () => {
  it('never answers 5xx, refuses with problem+json, and a refusal changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyRequest, { minLength: 1, maxLength: 12 }), async (requests) => {
        const t = await testApp({ leaseCheckMs: 0 });
        try {
          const ids = await seed(t);
          for (const generated of requests) {
            ids['{admin}'] = ids['{admin}'] ?? ADMIN_TOKEN;
            const req = fill(generated, ids);
            const before = await snapshot(t, ids['{admin}']);
            const res = await injectAnswer(t.app, req, opensStream(req));
            const what = `${req.method} ${req.url} ${String(req.payload ?? '').slice(0, 300)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
            expect(res.statusCode, what).toBeLessThan(500);
            if (res.statusCode >= 400) {
              expect(res.headers['content-type'], what).toMatch(/^application\/problem\+json/);
              expect(await snapshot(t, ids['{admin}']), what).toEqual(before);
            } else if (res.statusCode === 200 && req.method === 'PATCH' && /\/v1\/principals\/admin$/.test(String(req.url))) {
              // A rotated admin token: carry on with the new one.
              ids['{admin}'] = (res.json() as { token?: string }).token ?? ids['{admin}'];
            }
          }
        } finally {
          await t.close();
        }
      }),
      { numRuns: 30 },
    );
  }, 120_000);
});
