import fc from 'fast-check';
import fastJson from 'fast-json-stringify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { responseSerializerCompiler, serializationSchema } from '../../src/http/serializer.js';
import { HexU64 } from '../../src/schemas/u64.js';
import { testApp, type TestApp } from '../helpers.js';

/**
 * The serializer's memo of frozen answers and its unescaped hex strings (src/http/serializer.ts): the
 * text is always what the plain compiled serializer writes, and a change is seen at once.
 */
const Item = z.object({ id: z.number(), name: z.string(), at: HexU64, flags: z.array(z.boolean()), note: z.string().nullable() });
const compiled = (schema: z.ZodType) =>
  responseSerializerCompiler({ schema, method: 'GET', url: '/x', httpStatus: '200' } as Parameters<typeof responseSerializerCompiler>[0]) as (v: unknown) => string;

const item = fc.record({
  id: fc.integer(),
  name: fc.string(),
  at: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => `0x${n.toString(16)}`),
  flags: fc.array(fc.boolean(), { maxLength: 3 }),
  note: fc.option(fc.string(), { nil: null }),
});
const deepFreeze = <T>(v: T): T => {
  if (typeof v === 'object' && v !== null) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
};

describe('serializing frozen answers', () => {
  it('writes a list of frozen and unfrozen items, again and again, exactly as the plain serializer and JSON.stringify do', () => {
    const write = compiled(z.array(Item));
    const writeOne = compiled(Item);
    const plain = fastJson(serializationSchema(z.array(Item)) as fastJson.AnySchema) as (v: unknown) => string;
    fc.assert(
      fc.property(fc.array(fc.tuple(item, fc.boolean()), { maxLength: 8 }), (rows) => {
        const list = rows.map(([v, frozen]) => (frozen ? deepFreeze(v) : v));
        for (let i = 0; i < 2; i++) {
          expect(write(list)).toBe(plain(list));
          expect(write(list)).toBe(JSON.stringify(list));
          for (const v of list) expect(writeOne(v)).toBe(JSON.stringify(v));
        }
      }),
    );
  });

  it('an unfrozen answer changed between two writes is written as it is now', () => {
    const write = compiled(Item);
    const v = { id: 1, name: 'a', at: '0x10', flags: [], note: null };
    expect(write(v)).toBe(JSON.stringify(v));
    v.name = 'b "quoted"';
    expect(write(v)).toBe(JSON.stringify(v));
  });

  it('only strings whose pattern admits letters and digits alone are written unescaped', () => {
    const schema = serializationSchema(z.object({ a: HexU64, b: z.string().regex(/^[A-Za-z0-9._:-]+$/), c: z.string().regex(/^0x[0-9a-fA-F]{1,8}$/), d: z.string() }));
    const props = schema.properties as Record<string, { format?: string }>;
    expect([props.a!.format, props.b!.format, props.c!.format, props.d!.format]).toEqual(['unsafe', undefined, 'unsafe', undefined]);
  });
});

describe('frozen answers over HTTP', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ leaseCheckMs: 0, policy: 'group-first' });
  });
  afterEach(() => t.close());

  it('GET /v1/system and /v1/groups show a change on the next request', async () => {
    const system1 = (await t.admin({ url: '/v1/system' })).body;
    expect((await t.admin({ url: '/v1/system' })).body).toBe(system1);
    expect(JSON.parse(system1).policy).toBe('group-first');
    expect((await t.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy: 'device-first' } })).statusCode).toBe(200);
    const system2 = JSON.parse((await t.admin({ url: '/v1/system' })).body);
    expect(system2.policy).toBe('device-first');
    expect({ ...system2, policy: 'group-first' }).toEqual(JSON.parse(system1));
    expect((await t.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy: 'group-first' } })).statusCode).toBe(200);

    const groups1 = (await t.admin({ url: '/v1/groups' })).body;
    expect((await t.admin({ url: '/v1/groups' })).body).toBe(groups1);
    expect((JSON.parse(groups1) as { id: number; owner: unknown }[]).find((g) => g.id === 1)!.owner).toBeNull();
    // The group's view changes (a driver), then its owner (an open), then back.
    expect((await t.admin({ method: 'PUT', url: '/v1/devices/0000:01:00.1/driver', payload: { driver: 'vfio-pci' } })).statusCode).toBe(200);
    const groups2 = (await t.admin({ url: '/v1/groups' })).body;
    expect(groups2).not.toBe(groups1);
    // The list's item is what the group's own GET writes (the list is written item by item).
    const one = (await t.admin({ url: '/v1/groups/1' })).body;
    expect(JSON.stringify((JSON.parse(groups2) as { id: number }[]).find((g) => g.id === 1))).toBe(one);
    const alice = await t.user('alice', ['tenant-a', 'shared']);
    const ctx = (await t.as(alice.token, { method: 'POST', url: '/v1/contexts', payload: { name: 'c' } })).json() as { id: string };
    expect((await t.as(alice.token, { method: 'POST', url: '/v1/groups/1/open', payload: { contextId: ctx.id } })).statusCode).toBe(200);
    const owned = (await t.admin({ url: '/v1/groups' })).json() as { id: number; owner: unknown }[];
    expect(owned.find((g) => g.id === 1)!.owner).toBe(ctx.id);
    expect(JSON.stringify(owned.filter((g) => g.id !== 1))).toBe(JSON.stringify((JSON.parse(groups2) as { id: number }[]).filter((g) => g.id !== 1)));
    expect((await t.as(alice.token, { method: 'POST', url: '/v1/groups/1/close' })).statusCode).toBe(204);
    expect((await t.admin({ url: '/v1/groups' })).body).toBe(groups2);
  });
});
