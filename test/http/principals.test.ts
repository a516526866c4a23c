import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

describe('/v1/principals', () => {
  it('creates a principal with defaults, shows its token once, and the token works', async () => {
    const res = await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'alice', clearances: ['tenant-b', 'tenant-a', 'tenant-a'] } });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      name: 'alice',
      role: 'user',
      clearances: ['tenant-a', 'tenant-b'],
      quotas: { maxIoas: 1024, maxMappings: 65535, maxPinnedBytes: '0xffffffffffffffff', maxPasids: 1024, maxContexts: 1024 },
    });
    expect(body.token).toMatch(/^ioasd_/);
    const got = await t.admin({ url: `/v1/principals/${body.id}` });
    expect(got.json()).not.toHaveProperty('token');
    expect((await t.as(body.token, { url: '/v1/groups' })).statusCode).toBe(200);
  });

  it('lists, patches quotas and clearances, and rotates a token', async () => {
    const alice = await t.user('alice');
    const patch = await t.admin({
      method: 'PATCH',
      url: `/v1/principals/${alice.id}`,
      payload: { clearances: ['shared'], quotas: { maxMappings: 10, maxPinnedBytes: '0x100000' }, rotateToken: true },
    });
    expect(patch.statusCode).toBe(200);
    const body = patch.json();
    expect(body.clearances).toEqual(['shared']);
    expect(body.quotas).toEqual({ maxIoas: 1024, maxMappings: 10, maxPinnedBytes: '0x100000', maxPasids: 1024, maxContexts: 1024 });
    expectProblem(await t.as(alice.token, { url: '/v1/groups' }), 401, 'EACCES');
    expect((await t.as(body.token, { url: '/v1/groups' })).statusCode).toBe(200);
    const list = (await t.admin({ url: '/v1/principals' })).json() as { name: string }[];
    expect(list.map((p) => p.name)).toEqual(['admin', 'alice']);
  });

  it('refuses a duplicate name (EEXIST), an unknown id (ENOENT) and bad fields (EINVAL naming them)', async () => {
    await t.user('alice');
    expectProblem(await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'alice' } }), 409, 'EEXIST');
    expectProblem(await t.admin({ url: '/v1/principals/p-nothere' }), 404, 'ENOENT');
    const bad = expectProblem(
      await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'bob', role: 'root', quotas: { maxIoas: -1 }, extra: 1 } }),
      400,
      'EINVAL',
    );
    const paths = (bad.problems as { path: string }[]).map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['body.role', 'body.quotas.maxIoas']));
    expect(paths.length).toBeGreaterThanOrEqual(3);
  });

  it('deletes a principal, whose token then stops working', async () => {
    const alice = await t.user('alice');
    const del = await t.admin({ method: 'DELETE', url: `/v1/principals/${alice.id}` });
    expect(del.statusCode).toBe(204);
    expectProblem(await t.as(alice.token, { url: '/v1/groups' }), 401, 'EACCES');
    expectProblem(await t.admin({ method: 'DELETE', url: `/v1/principals/${alice.id}` }), 404, 'ENOENT');
  });

  it('never leaves the service without an admin', async () => {
    expectProblem(await t.admin({ method: 'DELETE', url: '/v1/principals/admin' }), 409, 'EBUSY');
    expectProblem(await t.admin({ method: 'PATCH', url: '/v1/principals/admin', payload: { role: 'user' } }), 409, 'EBUSY');
    const res = await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'root2', role: 'admin' } });
    const root2 = res.json() as { id: string; token: string };
    expect((await t.as(root2.token, { method: 'DELETE', url: '/v1/principals/admin' })).statusCode).toBe(204);
    expectProblem(await t.as(root2.token, { method: 'DELETE', url: `/v1/principals/${root2.id}` }), 409, 'EBUSY');
  });

  it('records each change in the audit trail, without tokens', async () => {
    const alice = await t.user('alice');
    await t.admin({ method: 'PATCH', url: `/v1/principals/${alice.id}`, payload: { rotateToken: true } });
    const audit = (await t.admin({ url: '/v1/audit' })).json() as { action: string; actor: string; detail: unknown }[];
    const mine = audit.filter((a) => a.actor === 'admin').map((a) => a.action);
    expect(mine).toEqual(['principal.create', 'principal.update']);
    expect(JSON.stringify(audit)).not.toContain(alice.token);
  });
});
