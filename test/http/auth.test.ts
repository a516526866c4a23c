import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

describe('authentication', () => {
  it('answers 401 EACCES without a token, with a bad token, and with a malformed header', async () => {
    for (const authorization of [undefined, 'Bearer nope', 'Basic abc', 'Bearer']) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/groups', headers: authorization ? { authorization } : {} });
      expectProblem(res, 401, 'EACCES');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="ioasd"');
    }
  });

  it('needs no token for /healthz and /readyz', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('answers 403 EACCES to a user calling an admin route, and serves the user its inventory routes', async () => {
    const alice = await t.user('alice');
    for (const [method, url] of [
      ['GET', '/v1/principals'],
      ['GET', '/v1/topology'],
      ['GET', '/v1/audit'],
      ['DELETE', '/v1/devices/0000:01:00.0'],
    ] as const) {
      expectProblem(await t.as(alice.token, { method, url }), 403, 'EACCES');
    }
    const put = await t.as(alice.token, { method: 'PUT', url: '/v1/devices/0000:01:00.1/driver', payload: { driver: 'vfio-pci' } });
    expectProblem(put, 403, 'EACCES');
    expect((await t.admin({ url: '/v1/devices/0000:01:00.1' })).json().driver).toBe('snd_hda_intel');
    expect((await t.as(alice.token, { url: '/v1/groups' })).statusCode).toBe(200);
    expect((await t.as(alice.token, { url: '/v1/system' })).statusCode).toBe(200);
  });

  it('stores tokens hashed, never in clear', async () => {
    const alice = await t.user('alice');
    const rows = t.app.ioasd.db.prepare('SELECT token_hash FROM principals').pluck().all() as string[];
    expect(rows).not.toContain(alice.token);
    expect(rows.every((h) => /^[0-9a-f]{64}$/.test(h))).toBe(true);
  });

  it('echoes a sane x-request-id and makes one up otherwise', async () => {
    const given = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
