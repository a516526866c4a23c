import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nestingDepth } from '../../src/http/json-body.js';
import { ADMIN_TOKEN, expectProblem, testApp, type TestApp } from '../helpers.js';

/** SPEC 10's HTTP hygiene, over app.inject (the raw-socket parts: hygiene-socket.test.ts). */

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

/** A user cleared for every demo label, with a context holding the PASID-capable accelerator bound and a nestParent hwpt. */
async function nestingSetup() {
  const u = await t.user('nester', ['tenant-a', 'tenant-b', 'shared']);
  const as = (o: Parameters<TestApp['admin']>[0]) => t.as(u.token, o);
  const ctx = (await as({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
  expect((await as({ method: 'POST', url: '/v1/devices/0000:06:00.0/bind', payload: { contextId: ctx } })).statusCode).toBe(200);
  const ioas = (await as({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx } })).json().id as number;
  const parent = await as({ method: 'POST', url: '/v1/hwpts', payload: { deviceId: '0000:06:00.0', ptId: ioas, nestParent: true } });
  expect(parent.statusCode).toBe(201);
  return { as, parentId: parent.json().id as number, token: u.token };
}

/** `{"a":{"a":...1...}}` with `levels` objects. */
const nested = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

describe('JSON bodies', () => {
  it('a 10,000-deep data on POST /v1/hwpts is 400 EINVAL naming the body, and no hwpt is made', async () => {
    const { as, parentId } = await nestingSetup();
    const before = (await as({ url: '/v1/hwpts' })).json();
    const res = await as({
      method: 'POST',
      url: '/v1/hwpts',
      headers: { 'content-type': 'application/json' },
      payload: `{"deviceId":"0000:06:00.0","ptId":${parentId},"data":${nested(10_000)}}`,
    });
    const body = expectProblem(res, 400, 'EINVAL');
    expect(body.detail).toMatch(/nested deeper than 64 levels/);
    expect(body.problems).toEqual([{ path: 'body', message: 'JSON nested deeper than 64 levels' }]);
    expect((await as({ url: '/v1/hwpts' })).json()).toEqual(before);
  });

  it('64 levels in all are accepted, 65 are not (the body object is level 1)', async () => {
    const { as, parentId } = await nestingSetup();
    const body = (dataLevels: number) => `{"deviceId":"0000:06:00.0","ptId":${parentId},"data":${nested(dataLevels)}}`;
    const ok = await as({ method: 'POST', url: '/v1/hwpts', headers: { 'content-type': 'application/json' }, payload: body(63) });
    expect(ok.statusCode).toBe(201);
    expectProblem(await as({ method: 'POST', url: '/v1/hwpts', headers: { 'content-type': 'application/json' }, payload: body(64) }), 400, 'EINVAL');
    // Arrays count too; brackets inside strings do not.
    expectProblem(await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: json, payload: '['.repeat(65) + ']'.repeat(65) }), 400, 'EINVAL');
    const quoted = await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: json, payload: `{"name":"${'[{'.repeat(30)}"}` });
    expect(quoted.statusCode).toBe(201);
  });

  it('counts depth outside strings only, escapes included', () => {
    expect(nestingDepth('{}')).toBe(1);
    expect(nestingDepth('[[{"a":[1]}]]')).toBe(4);
    expect(nestingDepth('{"a":"{[{[\\"{"}')).toBe(1);
    expect(nestingDepth('"\\\\"[')).toBe(1);
    expect(nestingDepth('[[[[', 2)).toBe(3); // stops once past the limit
  });

  it('a JSON charset other than UTF-8 is 415; utf-8 in any spelling is fine', async () => {
    for (const charset of ['latin1', 'iso-8859-1', 'utf-16', '"windows-1252"']) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: { ...auth, 'content-type': `application/json; charset=${charset}` }, payload: '{}' });
      const body = expectProblem(res, 415, 'EINVAL');
      expect(body.detail).toContain(charset.replaceAll('"', ''));
    }
    for (const charset of ['utf-8', 'UTF-8', 'utf8', '"utf-8"']) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: { ...auth, 'content-type': `application/json; charset=${charset}` }, payload: '{}' });
      expect(res.statusCode, charset).toBe(201);
    }
    expect((await t.admin({ url: '/v1/contexts' })).json()).toHaveLength(4);
  });

  it('other media types are 415 and change nothing', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/merge-patch+json']) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: { ...auth, 'content-type': type }, payload: 'name=x' });
      expectProblem(res, 415, 'EINVAL');
    }
    expect((await t.admin({ url: '/v1/contexts' })).json()).toEqual([]);
  });

  it('a body over 1 MiB is 413', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(1024 * 1024) });
    expectProblem(await t.app.inject({ method: 'POST', url: '/v1/contexts', headers: json, payload: big }), 413, 'EINVAL');
  });

  it('a smaller body limit applies when configured', async () => {
    const small = await testApp({ http: { bodyLimit: 100 } });
    try {
      const res = await small.app.inject({ method: 'POST', url: '/v1/contexts', headers: json, payload: JSON.stringify({ name: 'y'.repeat(100) }) });
      expectProblem(res, 413, 'EINVAL');
    } finally {
      await small.close();
    }
  });
});

describe('methods', () => {
  it('a known path with a method it lacks is 405 with Allow from the registered routes', async () => {
    const res = await t.admin({ method: 'DELETE', url: '/v1/groups' });
    const body = expectProblem(res, 405, 'EOPNOTSUPP');
    expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(body.detail).toContain('DELETE');
    const ioas = await t.admin({ method: 'PATCH', url: '/v1/ioas/7' });
    expectProblem(ioas, 405, 'EOPNOTSUPP');
    expect(ioas.headers.allow).toBe('DELETE, GET, HEAD, OPTIONS');
    const map = await t.admin({ method: 'PUT', url: '/v1/ioas/7/mappings' });
    expect(map.headers.allow).toBe('GET, HEAD, OPTIONS, POST');
    expect((await t.admin({ method: 'GET', url: '/v1/ioas/7/unmap' })).headers.allow).toBe('OPTIONS, POST');
  });

  it('OPTIONS answers 204 with Allow; HEAD works wherever GET does; unknown paths stay 404', async () => {
    const options = await t.app.inject({ method: 'OPTIONS', url: '/v1/principals/p-1' });
    expect(options.statusCode).toBe(204);
    expect(options.headers.allow).toBe('DELETE, GET, HEAD, OPTIONS, PATCH');
    const head = await t.admin({ method: 'HEAD', url: '/v1/groups' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expectProblem(await t.admin({ method: 'DELETE', url: '/v1/nothing' }), 404, 'ENOENT');
    expectProblem(await t.app.inject({ method: 'OPTIONS', url: '/v1/nothing' }), 404, 'ENOENT');
  });
});

describe('path parameters and URLs', () => {
  it('numeric ids are plain decimal: 0x1, 1e0, +1, 01, 1.0 and " 1" are 400 EINVAL naming the parameter', async () => {
    expect((await t.admin({ url: '/v1/groups/1' })).statusCode).toBe(200);
    for (const id of ['0x1', '1e0', '+1', '01', '1.0', '%201', '-1', '1_0', '１']) {
      for (const url of [`/v1/groups/${id}`, `/v1/ioas/${id}`, `/v1/hwpts/${id}`, `/v1/groups/${id}/devices/0000:01:00.0/open`]) {
        const method = url.endsWith('/open') ? 'POST' : 'GET';
        const body = expectProblem(await t.admin({ method, url }), 400, 'EINVAL');
        expect(body.problems, `${method} ${url}`).toEqual([{ path: 'params.id', message: expect.any(String) }]);
      }
    }
    expectProblem(await t.admin({ url: '/v1/groups/99999999999' }), 400, 'EINVAL');
    expectProblem(await t.admin({ url: '/v1/ioas/0' }), 404, 'ENOENT');
  });

  it('numbers in query strings are plain decimal too', async () => {
    expect((await t.admin({ url: '/v1/devices?group=3' })).json()).toHaveLength(1);
    for (const q of ['group=0x3', 'group=3e0', 'group=03']) expectProblem(await t.admin({ url: `/v1/devices?${q}` }), 400, 'EINVAL');
    expectProblem(await t.admin({ url: '/v1/audit?limit=1e2' }), 400, 'EINVAL');
  });

  it('a path parameter longer than 128 characters is 414; 128 is looked up; a URL over 4096 is 414', async () => {
    expectProblem(await t.admin({ url: `/v1/devices/${'a'.repeat(128)}` }), 404, 'ENOENT');
    const long = expectProblem(await t.admin({ url: `/v1/devices/${'a'.repeat(129)}` }), 414, 'EINVAL');
    expect(long.problems).toEqual([{ path: 'params.id', message: 'longer than 128 characters' }]);
    expectProblem(await t.admin({ url: `/v1/devices/${'a'.repeat(1000)}` }), 414, 'EINVAL');
    expectProblem(await t.admin({ url: `/v1/groups?${'x'.repeat(4100)}` }), 414, 'EINVAL');
    expectProblem(await t.app.inject({ url: `/nothing/${'x'.repeat(5000)}` }), 414, 'EINVAL');
  });

  it('percent-encoded ids work; a broken encoding is 400 problem+json', async () => {
    expect((await t.admin({ url: '/v1/devices/0000%3A02%3A01.0' })).json().id).toBe('0000:02:01.0');
    expectProblem(await t.admin({ url: '/v1/devices/%E0%A4%A' }), 400, 'EINVAL');
  });
});

describe('unknown query parameters', () => {
  it('are 400 EINVAL naming each, on routes with and without a querystring schema', async () => {
    const none = expectProblem(await t.admin({ url: '/v1/groups?x=1&y=2' }), 400, 'EINVAL');
    expect(none.problems).toEqual([
      { path: 'query.x', message: 'unknown query parameter' },
      { path: 'query.y', message: 'unknown query parameter' },
    ]);
    expect(none.detail).toContain('this route takes none');
    const some = expectProblem(await t.admin({ url: '/v1/devices?kind=vf&grup=3' }), 400, 'EINVAL');
    expect(some.problems).toEqual([{ path: 'query.grup', message: 'unknown query parameter' }]);
    expect(some.detail).toContain('group, driver, kind, free');
    expectProblem(await t.app.inject({ url: '/healthz?verbose=1' }), 400, 'EINVAL');
    expect((await t.admin({ url: '/v1/devices?kind=vf' })).statusCode).toBe(200);
  });

  it('a misspelt dryrun never runs the real action', async () => {
    const u = await t.user('dry', ['tenant-a']);
    const ctx = (await t.as(u.token, { method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
    const res = await t.as(u.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/bind?dryrun=true', payload: { contextId: ctx } });
    expectProblem(res, 400, 'EINVAL');
    expect((await t.admin({ url: '/v1/groups/3' })).json().owner).toBeNull();
    expect((await t.admin({ url: '/v1/audit' })).json().filter((a: { action: string }) => a.action.startsWith('device.'))).toEqual([]);
  });

  it('authentication answers first', async () => {
    expectProblem(await t.app.inject({ url: '/v1/groups?x=1' }), 401, 'EACCES');
  });
});

describe('rate limits', () => {
  it('per principal: past the limit 429 EAGAIN with Retry-After; others and unauthenticated requests are not counted', async () => {
    const limited = await testApp({ rateLimit: { max: 3, windowMs: 60_000 } });
    try {
      const u = await limited.user('busy');
      // The admin's creation of the user counted 1 of the admin's 3.
      for (let i = 0; i < 3; i++) {
        const res = await limited.as(u.token, { url: '/v1/groups' });
        expect(res.statusCode).toBe(200);
        expect([res.headers['x-ratelimit-limit'], res.headers['x-ratelimit-remaining']]).toEqual(['3', String(2 - i)]);
      }
      for (let i = 0; i < 5; i++) expect((await limited.app.inject({ url: '/v1/groups' })).statusCode).toBe(401);
      const refused = await limited.as(u.token, { method: 'POST', url: '/v1/contexts', payload: {} });
      const body = expectProblem(refused, 429, 'EAGAIN');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(body.detail).toContain(u.id);
      // Refused before the handler: no context was made.
      expect((await limited.admin({ url: '/v1/contexts' })).json()).toEqual([]);
      expect((await limited.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect((await limited.admin({ url: '/v1/system' })).statusCode).toBe(200);
      expect((await limited.admin({ url: '/v1/system' })).statusCode).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it('without a limit configured, none applies', async () => {
    for (let i = 0; i < 50; i++) expect((await t.admin({ url: '/v1/system' })).statusCode).toBe(200);
  });
});
