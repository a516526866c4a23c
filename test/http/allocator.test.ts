import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
const clock = { now: Date.UTC(2026, 10, 24) };

beforeEach(async () => {
  t = await testApp({ now: () => clock.now, leaseCheckMs: 0 });
  alice = await t.user('alice');
  bob = await t.user('bob');
});
afterEach(() => t.close());

const as = (who: { token: string }, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) =>
  t.as(who.token, { method, url, ...(payload ? { payload } : {}) });

async function newIoas(who = alice): Promise<{ ctx: string; id: number }> {
  const ctx = (await as(who, 'POST', '/v1/contexts', {})).json().id as string;
  const ioas = await as(who, 'POST', '/v1/ioas', { contextId: ctx });
  expect(ioas.statusCode).toBe(201);
  return { ctx, id: ioas.json().id as number };
}

describe('/v1/contexts', () => {
  it('creates, lists, gets, renews and deletes a context of the caller', async () => {
    const created = await as(alice, 'POST', '/v1/contexts', { name: 'vm-1', leaseSeconds: 60 });
    expect(created.statusCode).toBe(201);
    const ctx = created.json();
    expect(ctx).toMatchObject({ name: 'vm-1', principalId: alice.id, leaseSeconds: 60, ioas: [], expiresAt: new Date(clock.now + 60_000).toISOString() });
    expect((await as(alice, 'GET', '/v1/contexts')).json().map((c: { id: string }) => c.id)).toEqual([ctx.id]);
    expect((await as(bob, 'GET', '/v1/contexts')).json()).toEqual([]);
    expect((await t.admin({ url: '/v1/contexts' })).json()).toHaveLength(1);
    clock.now += 30_000;
    const renewed = await as(alice, 'POST', `/v1/contexts/${ctx.id}/renew`, {});
    expect(renewed.json().expiresAt).toBe(new Date(clock.now + 60_000).toISOString());
    expect((await as(alice, 'DELETE', `/v1/contexts/${ctx.id}`)).statusCode).toBe(204);
    expectProblem(await as(alice, 'GET', `/v1/contexts/${ctx.id}`), 404, 'ENOENT');
  });

  it('answers another principal ENOENT, exactly as for a missing context', async () => {
    const ctx = (await as(alice, 'POST', '/v1/contexts', {})).json().id;
    for (const [method, url] of [['GET', `/v1/contexts/${ctx}`], ['DELETE', `/v1/contexts/${ctx}`], ['POST', `/v1/contexts/${ctx}/renew`]] as const) {
      const theirs = expectProblem(await as(bob, method, url, method === 'POST' ? {} : undefined), 404, 'ENOENT');
      const missing = expectProblem(await as(bob, method, url.replace(ctx, 'ctx-missing'), method === 'POST' ? {} : undefined), 404, 'ENOENT');
      expect(theirs.detail).toBe((missing.detail as string).replace('ctx-missing', ctx));
    }
    expectProblem(await as(bob, 'POST', '/v1/ioas', { contextId: ctx }), 404, 'ENOENT');
  });

  it('releases a context whose lease ran out, with everything it holds', async () => {
    const ctx = (await as(alice, 'POST', '/v1/contexts', { leaseSeconds: 5 })).json().id;
    const ioas = (await as(alice, 'POST', '/v1/ioas', { contextId: ctx })).json().id;
    await as(alice, 'POST', `/v1/ioas/${ioas}/mappings`, { iova: '0x1000', length: '0x1000', userAddress: '0x0' });
    clock.now += 5_001;
    expect(t.app.ioasd.contexts.reapExpired()).toEqual([ctx]);
    expectProblem(await as(alice, 'GET', `/v1/ioas/${ioas}`), 404, 'ENOENT');
    const audit = (await t.admin({ url: '/v1/audit?limit=1000' })).json() as { action: string; actor: string | null }[];
    expect(audit.at(-1)).toMatchObject({ action: 'context.expire', actor: null });
  });

  it('the lease timer releases an expired context by itself', async () => {
    const live = await testApp({ leaseCheckMs: 50 });
    const ctx = (await live.admin({ method: 'POST', url: '/v1/contexts', payload: { leaseSeconds: 1 } })).json().id;
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 5_000) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await live.admin({ url: `/v1/contexts/${ctx}` })).statusCode;
    }
    expect(status).toBe(404);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await live.close();
  });

  it('refuses bad leases and unknown fields', async () => {
    expectProblem(await as(alice, 'POST', '/v1/contexts', { leaseSeconds: 0 }), 400, 'EINVAL');
    expectProblem(await as(alice, 'POST', '/v1/contexts', { leaseSeconds: 1.5 }), 400, 'EINVAL');
    expectProblem(await as(alice, 'POST', '/v1/contexts', { owner: 'bob' }), 400, 'EINVAL');
    const ctx = (await as(alice, 'POST', '/v1/contexts', {})).json().id;
    expectProblem(await as(alice, 'POST', `/v1/contexts/${ctx}/renew`, {}), 400, 'EINVAL');
  });

  it('deleting a principal releases its contexts', async () => {
    const { id } = await newIoas(bob);
    expect((await t.admin({ method: 'DELETE', url: `/v1/principals/${bob.id}` })).statusCode).toBe(204);
    expect(t.app.ioasd.ioas.list({ id: 'admin', role: 'admin' }).map((s) => s.id)).not.toContain(id);
  });
});

describe('/v1/ioas', () => {
  it('creates an ioas with the lowest free IOASID, lists, gets and deletes it', async () => {
    const a = await newIoas();
    const b = await newIoas();
    expect([a.id, b.id]).toEqual([1, 2]);
    expect((await as(alice, 'GET', `/v1/ioas/${a.id}`)).json()).toMatchObject({ id: 1, contextId: a.ctx, alignment: '0x1', allowedRanges: [], mappings: 0 });
    expect((await as(alice, 'GET', `/v1/ioas?contextId=${b.ctx}`)).json().map((x: { id: number }) => x.id)).toEqual([2]);
    expect((await as(alice, 'DELETE', `/v1/ioas/${a.id}`)).statusCode).toBe(204);
    expect((await newIoas()).id).toBe(1);
    expectProblem(await as(bob, 'GET', `/v1/ioas/${b.id}`), 404, 'ENOENT');
    expectProblem(await as(alice, 'GET', '/v1/ioas/abc'), 400, 'EINVAL');
  });

  it('maps fixed and auto IOVAs, answering hex strings', async () => {
    const { id } = await newIoas();
    const fixed = await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x100000', length: 4096, userAddress: '140737488355328', read: true, write: false });
    expect(fixed.statusCode).toBe(201);
    expect(fixed.json()).toEqual({ iova: '0x100000', length: '0x1000', userAddress: '0x800000000000', read: true, write: false });
    const auto = await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { length: '0x2000', userAddress: '0x7f0000000000' });
    expect(auto.json().iova).toBe('0x2000');
  });

  it('turns each rule into its errno and status over HTTP', async () => {
    const { id } = await newIoas();
    const map = (payload: object) => as(alice, 'POST', `/v1/ioas/${id}/mappings`, payload);
    expectProblem(await map({ iova: '0x1000', length: '0x1000', userAddress: 0, read: false, write: false }), 400, 'EINVAL');
    expectProblem(await map({ iova: '0xffffffffffffffff', length: '0x1000', userAddress: 0 }), 400, 'EOVERFLOW');
    expectProblem(await map({ iova: '0x10000000000000000', length: '0x1000', userAddress: 0 }), 400, 'EOVERFLOW');
    expectProblem(await map({ iova: '0x1000', length: 0, userAddress: 0 }), 400, 'EINVAL');
    expectProblem(await map({ iova: 'banana', length: 1, userAddress: 0 }), 400, 'EINVAL');
    expectProblem(await map({ iova: -5, length: 1, userAddress: 0 }), 400, 'EINVAL');
    await map({ iova: '0x1000', length: '0x1000', userAddress: 0 });
    expectProblem(await map({ iova: '0x1fff', length: '0x10', userAddress: 0 }), 409, 'EEXIST');
    expectProblem(await as(alice, 'POST', '/v1/ioas/77/mappings', { iova: '0x1000', length: 1, userAddress: 0 }), 404, 'ENOENT');
    expectProblem(await as(bob, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x9000', length: 1, userAddress: 0 }), 404, 'ENOENT');
  });

  it('pages through mappings with a cursor', async () => {
    const { id } = await newIoas();
    const batch = await as(alice, 'POST', `/v1/ioas/${id}/mappings/batch`, {
      mappings: Array.from({ length: 5 }, (_, i) => ({ iova: `0x${((i + 1) * 0x1000).toString(16)}`, length: '0x1000', userAddress: 0 })),
    });
    expect(batch.statusCode).toBe(201);
    expect(batch.json().mappings).toHaveLength(5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { iova: string }[]; nextCursor: string | null } = (await as(alice, 'GET', `/v1/ioas/${id}/mappings?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.items.map((m) => m.iova));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['0x1000', '0x2000', '0x3000', '0x4000', '0x5000']);
  });

  it('refuses a batch whole, naming the failing entry', async () => {
    const { id } = await newIoas();
    const res = await as(alice, 'POST', `/v1/ioas/${id}/mappings/batch`, {
      mappings: [{ iova: '0x1000', length: '0x1000', userAddress: 0 }, { iova: '0x1800', length: '0x1000', userAddress: 0 }],
    });
    const body = expectProblem(res, 409, 'EEXIST');
    expect(body.detail).toMatch(/^mappings\[1\]: /);
    expect((await as(alice, 'GET', `/v1/ioas/${id}`)).json().mappings).toBe(0);
  });

  it('unmaps, copies and sets allowed ranges', async () => {
    const { id } = await newIoas();
    const other = await newIoas();
    await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x10000', length: '0x2000', userAddress: '0x7f0000000000' });
    const copy = await as(alice, 'POST', `/v1/ioas/${other.id}/copy`, { srcIoasId: id, srcIova: '0x11000', length: '0x1000', dstIova: '0x5000' });
    expect(copy.statusCode).toBe(201);
    expect(copy.json()).toEqual({ iova: '0x5000', length: '0x1000', mappings: [{ iova: '0x5000', length: '0x1000', userAddress: '0x7f0000001000', read: true, write: true }] });
    expectProblem(await as(alice, 'POST', `/v1/ioas/${id}/unmap`, { iova: '0x10000', length: '0x1000' }), 404, 'ENOENT');
    expect((await as(alice, 'POST', `/v1/ioas/${id}/unmap`, { iova: '0x10000', length: '0x2000' })).json()).toEqual({ unmappedBytes: '0x2000' });
    expect((await as(alice, 'POST', `/v1/ioas/${other.id}/unmap`, { all: true })).json()).toEqual({ unmappedBytes: '0x1000' });
    expectProblem(await as(alice, 'POST', `/v1/ioas/${id}/unmap`, {}), 400, 'EINVAL');
    const allowed = await as(alice, 'PUT', `/v1/ioas/${id}/allowed-ranges`, { ranges: [{ start: '0x200000', last: '0x2fffff' }] });
    expect(allowed.json()).toEqual({ ranges: [{ start: '0x200000', last: '0x2fffff' }] });
    expect((await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { length: '0x1000', userAddress: 0 })).json().iova).toBe('0x200000');
    expectProblem(await as(alice, 'PUT', `/v1/ioas/${id}/allowed-ranges`, { ranges: [{ start: '0x5', last: '0x5' }] }), 400, 'EINVAL');
    expect((await as(alice, 'GET', `/v1/ioas/${id}/iova-ranges`)).json()).toEqual({ ranges: [{ start: '0x0', last: '0xffffffffffffffff' }], alignment: '0x1' });
  });

  it('enforces quotas an admin sets on the principal', async () => {
    await t.admin({ method: 'PATCH', url: `/v1/principals/${alice.id}`, payload: { quotas: { maxIoas: 1, maxMappings: 1, maxPinnedBytes: '0x1000' } } });
    const { id, ctx } = await newIoas();
    expectProblem(await as(alice, 'POST', '/v1/ioas', { contextId: ctx }), 409, 'ENOSPC');
    expectProblem(await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x1000', length: '0x2000', userAddress: 0 }), 409, 'ENOMEM');
    await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x1000', length: '0x1000', userAddress: 0 });
    expectProblem(await as(alice, 'POST', `/v1/ioas/${id}/mappings`, { iova: '0x8000', length: '0x1000', userAddress: 0 }), 409, 'ENOSPC');
  });

  it('under group-first: no IOMMU model yet (EINVAL), copy and allowed ranges EOPNOTSUPP', async () => {
    const g = await testApp({ policy: 'group-first', leaseCheckMs: 0 });
    const ctx = (await g.admin({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
    const id = (await g.admin({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx } })).json().id;
    expectProblem(await g.admin({ method: 'POST', url: `/v1/ioas/${id}/mappings`, payload: { iova: '0x1000', length: '0x1000', userAddress: 0 } }), 400, 'EINVAL');
    expectProblem(await g.admin({ method: 'PUT', url: `/v1/ioas/${id}/allowed-ranges`, payload: { ranges: [] } }), 422, 'EOPNOTSUPP');
    expectProblem(await g.admin({ method: 'POST', url: `/v1/ioas/${id}/copy`, payload: { srcIoasId: id, srcIova: 0, length: 1 } }), 422, 'EOPNOTSUPP');
    await g.close();
  });
});
