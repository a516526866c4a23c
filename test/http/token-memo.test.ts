import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

/** Authentication with the token hash memo (src/core/token-memo.ts): a token that worked is refused at once when it stops being valid. */
describe('bearer tokens seen before', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ leaseCheckMs: 0 });
  });
  afterEach(() => t.close());

  it('a rotated token is refused on the very next request, and the new one works', async () => {
    const alice = await t.user('alice');
    for (let i = 0; i < 3; i++) expect((await t.as(alice.token, { url: '/v1/whoami' })).statusCode).toBe(200);
    const res = await t.admin({ method: 'PATCH', url: `/v1/principals/${alice.id}`, payload: { rotateToken: true } });
    expect(res.statusCode).toBe(200);
    const fresh = (res.json() as { token: string }).token;
    expectProblem(await t.as(alice.token, { url: '/v1/whoami' }), 401, 'EACCES');
    const me = await t.as(fresh, { url: '/v1/whoami' });
    expect(me.statusCode).toBe(200);
    expect((me.json() as { id: string }).id).toBe(alice.id);
  });

  it("a deleted principal's token is refused on the very next request", async () => {
    const bob = await t.user('bob');
    expect((await t.as(bob.token, { url: '/v1/groups' })).statusCode).toBe(200);
    expect((await t.admin({ method: 'DELETE', url: `/v1/principals/${bob.id}` })).statusCode).toBe(204);
    expectProblem(await t.as(bob.token, { url: '/v1/groups' }), 401, 'EACCES');
  });

  it('a changed role takes effect at once for a token seen before', async () => {
    const carol = await t.user('carol');
    expectProblem(await t.as(carol.token, { url: '/v1/audit' }), 403, 'EACCES');
    expect((await t.admin({ method: 'PATCH', url: `/v1/principals/${carol.id}`, payload: { role: 'admin' } })).statusCode).toBe(200);
    expect((await t.as(carol.token, { url: '/v1/audit' })).statusCode).toBe(200);
  });
});
