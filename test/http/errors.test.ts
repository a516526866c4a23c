import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('problem+json for bad input, never a 500', () => {
  it('malformed JSON is 400 EINVAL', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/principals', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":' });
    expectProblem(res, 400, 'EINVAL');
  });

  it('an empty JSON body is 400 EINVAL naming the body', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/principals', headers: { ...auth, 'content-type': 'application/json' }, payload: '' });
    expectProblem(res, 400, 'EINVAL');
  });

  it('a body of an unsupported media type is 415, text/plain included', async () => {
    const xml = await t.app.inject({ method: 'POST', url: '/v1/principals', headers: { ...auth, 'content-type': 'application/xml' }, payload: '<a/>' });
    expectProblem(xml, 415, 'EINVAL');
    const text = await t.app.inject({ method: 'POST', url: '/v1/principals', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'hi' });
    expectProblem(text, 415, 'EINVAL');
  });

  it('a schema violation is 400 EINVAL naming the field', async () => {
    const res = await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 42 } });
    const body = expectProblem(res, 400, 'EINVAL');
    expect(body.detail).toContain('body.name');
    expect(body.problems).toEqual([{ path: 'body.name', message: expect.any(String) }]);
  });

  it('an unknown route is 404 ENOENT', async () => {
    expectProblem(await t.admin({ url: '/v1/nothing' }), 404, 'ENOENT');
    expectProblem(await t.app.inject({ url: '/nothing' }), 404, 'ENOENT');
  });

  it('random junk bodies and paths never produce a 500', async () => {
    const bodies = ['null', '[]', '"x"', '123', '{"__proto__":{"x":1}}', '{"name":"a".repeat}', '{"id":1e999}'];
    const routes: [string, string][] = [
      ['POST', '/v1/principals'],
      ['PUT', '/v1/topology'],
      ['POST', '/v1/devices'],
      ['PUT', '/v1/devices/0000:01:00.0/driver'],
      ['PATCH', '/v1/principals/admin'],
    ];
    for (const [method, url] of routes) {
      for (const payload of bodies) {
        const res = await t.app.inject({ method: method as 'POST', url, headers: { ...auth, 'content-type': 'application/json' }, payload });
        expect(res.statusCode, `${method} ${url} ${payload}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, `${method} ${url} ${payload}`).toBeLessThan(500);
      }
    }
    for (const url of ['/v1/groups/99999999999', '/v1/devices/%00', '/v1/groups/1.5', '/v1/devices?group=-1', '/v1/audit?limit=0']) {
      const res = await t.admin({ url });
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
    }
  });
});

describe('OpenAPI', () => {
  it('serves at /openapi.json exactly the committed openapi/openapi.json', async () => {
    const served = (await t.app.inject({ url: '/openapi.json' })).json();
    const committed = JSON.parse(readFileSync(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'));
    // If this fails: run `npm run openapi` and commit the result. Compared as text, key order
    // included, as the container smoke test (scripts/smoke.sh) compares it.
    expect(JSON.stringify(served, null, 2)).toBe(JSON.stringify(committed, null, 2));
    expect(served.openapi).toBe('3.1.0');
  });

  it('documents every /v1 route with an operationId, tags and problem answers', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; responses: Record<string, unknown> }>>;
    };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, o] of Object.entries(ops)) {
        expect(o.operationId, `${method} ${path}`).toBeTruthy();
        expect(o.tags?.length, `${method} ${path}`).toBe(1);
        if (path.startsWith('/v1')) expect(Object.keys(o.responses), `${method} ${path}`).toContain('401');
      }
    }
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await t.app.inject({ url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
  });

  it('serves Prometheus metrics at /metrics', async () => {
    await t.app.inject({ url: '/healthz' });
    const res = await t.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('http_request_duration_seconds');
  });
});
