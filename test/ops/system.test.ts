import { afterEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup() {
  const t = await testApp({ leaseCheckMs: 0 });
  apps.push(t);
  return t;
}

describe('GET /v1/whoami', () => {
  it('answers the calling principal with its quotas and what it uses of them', async () => {
    const t = await setup();
    const alice = await t.user('alice', ['tenant-a', 'shared']);
    const as = (method: 'GET' | 'POST', url: string, payload?: object) => t.as(alice.token, { method, url, ...(payload ? { payload } : {}) });
    const empty = (await as('GET', '/v1/whoami')).json();
    expect(empty).toEqual({
      id: alice.id,
      name: 'alice',
      role: 'user',
      clearances: ['shared', 'tenant-a'],
      quotas: { maxIoas: 1024, maxMappings: 65535, maxPinnedBytes: '0xffffffffffffffff', maxPasids: 1024, maxContexts: 1024 },
      usage: { contexts: 0, ioas: 0, mappings: 0, pinnedBytes: '0x0', pasids: 0 },
    });
    const ctx = (await as('POST', '/v1/contexts', {})).json().id;
    const ioas = (await as('POST', '/v1/ioas', { contextId: ctx })).json().id;
    await as('POST', `/v1/ioas/${ioas}/mappings`, { iova: '0x100000', length: '0x2000', userAddress: '0x0', read: true, write: true });
    expect((await as('GET', '/v1/whoami')).json().usage).toEqual({ contexts: 1, ioas: 1, mappings: 1, pinnedBytes: '0x2000', pasids: 0 });
    expect((await t.admin({ method: 'GET', url: '/v1/whoami' })).json()).toMatchObject({ id: 'admin', role: 'admin', usage: { contexts: 0 } });
    expectProblem(await t.as(null, { method: 'GET', url: '/v1/whoami' }), 401, 'EACCES');
  });
});

describe('maxContexts', () => {
  it('refuses one context past the quota with ENOSPC, and counts a deleted one back', async () => {
    const t = await setup();
    const bob = await t.user('bob');
    expect((await t.admin({ method: 'PATCH', url: `/v1/principals/${bob.id}`, payload: { quotas: { maxContexts: 2 } } })).statusCode).toBe(200);
    const create = () => t.as(bob.token, { method: 'POST', url: '/v1/contexts', payload: {} });
    const first = (await create()).json().id;
    expect((await create()).statusCode).toBe(201);
    expectProblem(await create(), 409, 'ENOSPC');
    expect((await t.as(bob.token, { method: 'DELETE', url: `/v1/contexts/${first}` })).statusCode).toBe(204);
    expect((await create()).statusCode).toBe(201);
  });
});

describe('GET /v1/system/check', () => {
  it('is ok on a busy system and names the invariant, object and detail of each violation it finds', async () => {
    const t = await setup();
    const alice = await t.user('alice', ['tenant-a']);
    const as = (method: 'GET' | 'POST', url: string, payload?: object) => t.as(alice.token, { method, url, ...(payload ? { payload } : {}) });
    const ctx = (await as('POST', '/v1/contexts', {})).json().id;
    const ioas = (await as('POST', '/v1/ioas', { contextId: ctx })).json().id;
    await as('POST', `/v1/ioas/${ioas}/mappings`, { iova: '0x100000', length: '0x1000', userAddress: '0x0', read: true, write: true });
    expect((await as('POST', '/v1/devices/0000:02:01.0/bind', { contextId: ctx })).statusCode).toBe(200);
    expect((await as('POST', '/v1/devices/0000:02:01.0/attach', { ptId: ioas })).statusCode).toBe(200);
    const good = await t.admin({ method: 'GET', url: '/v1/system/check' });
    expect(good.statusCode).toBe(200);
    expect(good.json()).toMatchObject({ ok: true, violations: [], checked: { contexts: 1, ioas: 1, hwpts: 1, bindings: 1, mappings: 1 } });
    expectProblem(await as('GET', '/v1/system/check'), 403, 'EACCES');

    // Behind the service's back: a mapping row memory does not know, and a kernel driver under the owner.
    const db = t.app.ioasd.db;
    db.prepare('INSERT INTO mappings (ioas_id, iova, length, user_address, flags, pages_id, pages_bytes) SELECT ioas_id, iova + 4096, length, user_address, flags, 999, NULL FROM mappings').run();
    db.prepare("UPDATE devices SET driver = 'ixgbevf' WHERE id = '0000:02:01.0'").run();
    const bad = (await t.admin({ method: 'GET', url: '/v1/system/check' })).json();
    expect(bad.ok).toBe(false);
    const invariants = new Set(bad.violations.map((v: { invariant: string }) => v.invariant));
    expect(invariants).toEqual(new Set(['no-kernel-dma-beside-owner', 'usage-totals', 'memory-equals-database']));
    expect(bad.violations).toContainEqual({ invariant: 'no-kernel-dma-beside-owner', object: 'group 3', detail: '0000:02:01.0 is on kernel driver ixgbevf' });
    expect(bad.violations.find((v: { object: string }) => v.object === `ioas:${ioas}`)).toBeDefined();
  });
});
