import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, expectProblem, testApp, type TestApp } from '../helpers.js';

/** Routes whose body fields are all optional take a request without a body as {}; and small things a first user meets. */
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const NO_BODY: Record<string, Record<string, string>> = {
  'no content type, no content': {},
  'content-length 0': { 'content-length': '0' },
  'JSON content type, no content': { 'content-type': 'application/json' },
  'JSON content type, content-length 0': { 'content-type': 'application/json', 'content-length': '0' },
};

describe('an absent body is {} where every field is optional', () => {
  for (const [name, headers] of Object.entries(NO_BODY)) {
    it(`${name}: context create, renew and detach`, async () => {
      t = await testApp();
      const created = await t.admin({ method: 'POST', url: '/v1/contexts', headers });
      expect(created.statusCode).toBe(201);
      const ctx = created.json() as { id: string; name: null; leaseSeconds: null };
      expect(ctx).toMatchObject({ name: null, leaseSeconds: null });
      const leased = ((await t.admin({ method: 'POST', url: '/v1/contexts', payload: { leaseSeconds: 60 } })).json() as { id: string }).id;
      const renewed = await t.admin({ method: 'POST', url: `/v1/contexts/${leased}/renew`, headers });
      expect(renewed.statusCode).toBe(200);
      expect(renewed.json()).toMatchObject({ leaseSeconds: 60 });
      const alice = await t.user('alice', ['tenant-a']);
      const actx = ((await t.as(alice.token, { method: 'POST', url: '/v1/contexts', headers })).json() as { id: string }).id;
      expect((await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: actx } })).statusCode).toBe(200);
      const detached = await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/detach', headers });
      expect(detached.statusCode).toBe(200);
    });
  }

  it('a body that is there is still checked: junk stays 400, an unknown field too', async () => {
    t = await testApp();
    const junk = await t.admin({ method: 'POST', url: '/v1/contexts', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    expectProblem(junk, 400, 'EINVAL');
    const unknown = await t.admin({ method: 'POST', url: '/v1/contexts', payload: { nmae: 'x' } });
    expectProblem(unknown, 400, 'EINVAL');
  });

  it('a route that needs its body still refuses an absent one', async () => {
    t = await testApp();
    const res = await t.admin({ method: 'POST', url: '/v1/ioas' });
    expectProblem(res, 400, 'EINVAL');
  });

  it('the OpenAPI document marks exactly these bodies optional; every other body stays required', async () => {
    t = await testApp();
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { requestBody?: { required?: boolean } }>> };
    const optional: string[] = [];
    const required: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (op.requestBody) (op.requestBody.required === false ? optional : required).push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(optional.sort()).toEqual(['POST /v1/contexts', 'POST /v1/contexts/{id}/renew', 'POST /v1/devices/{id}/detach']);
    expect(required).toContain('POST /v1/ioas');
    expect(required.length).toBeGreaterThan(10);
  });

  it('over a real socket, as curl -X POST sends it', async () => {
    t = await testApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${address.port}/v1/contexts`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(201);
  });
});

describe('a first visit', () => {
  it('GET / redirects to the topology page', async () => {
    t = await testApp();
    const res = await t.as(null, { method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/ui');
  });

  it('the event stream opens with its start position as an id without data', async () => {
    t = await testApp();
    await t.admin({ method: 'POST', url: '/v1/contexts', payload: {} });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as { port: number };
    const newest = t.app.ioasd.store.eventBounds().newest;
    expect(newest).toBeGreaterThan(0);
    const first = await new Promise<string>((resolve, reject) => {
      const req = request(`http://127.0.0.1:${port}/v1/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('\n\n')) {
            resolve(text);
            res.destroy();
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(first).toBe(`: connected\nid: ${newest}\n\n`);
  });
});
