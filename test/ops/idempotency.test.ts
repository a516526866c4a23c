import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN_NOT_KEPT } from '../../src/http/mutation.js';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup() {
  const t = await testApp({ leaseCheckMs: 0 });
  apps.push(t);
  const alice = await t.user('alice', ['tenant-a']);
  const as = (token: string, method: 'POST' | 'PUT' | 'DELETE' | 'GET', url: string, payload?: object, key?: string) =>
    t.as(token, { method, url, ...(payload ? { payload } : {}), headers: key === undefined ? {} : { 'idempotency-key': key } });
  return { t, alice, as };
}

describe('Idempotency-Key', () => {
  it('a retried create gets the first answer back, marked replayed, and makes nothing new', async () => {
    const { t, alice, as } = await setup();
    const first = await as(alice.token, 'POST', '/v1/contexts', { name: 'vm' }, 'create-vm-1');
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await as(alice.token, 'POST', '/v1/contexts', { name: 'vm' }, 'create-vm-1');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // The stored answer is the text that was sent, byte for byte, with the same type.
    expect(again.body).toBe(first.body);
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect((await as(alice.token, 'GET', '/v1/contexts')).json()).toHaveLength(1);
    // A different key is a different request.
    expect((await as(alice.token, 'POST', '/v1/contexts', { name: 'vm' }, 'create-vm-2')).json().id).not.toBe(first.json().id);
    expect(t.app.ioasd.check().ok).toBe(true);
  });

  it('a replayed answer that carried a bearer token says it is shown once instead: the token is never stored', async () => {
    const { t } = await setup();
    const req = { method: 'POST' as const, url: '/v1/principals', payload: { name: 'bob', clearances: [] }, headers: { 'idempotency-key': 'make-bob' } };
    const first = await t.admin(req);
    expect(first.statusCode).toBe(201);
    const token = (first.json() as { token: string }).token;
    expect(token).toMatch(/^ioasd_/);
    const replay = await t.admin(req);
    expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.headers['content-type']]).toEqual([201, 'true', first.headers['content-type']]);
    expect(replay.json()).toEqual({ ...(first.json() as object), token: TOKEN_NOT_KEPT });
    const stored = t.app.ioasd.db.prepare("SELECT body FROM idempotency WHERE key = 'make-bob'").pluck().get() as string;
    expect(stored).not.toContain(token);
  });

  it('a retried map answers the first 201, not EEXIST', async () => {
    const { alice, as } = await setup();
    const ctx = (await as(alice.token, 'POST', '/v1/contexts', {})).json().id;
    const ioas = (await as(alice.token, 'POST', '/v1/ioas', { contextId: ctx })).json().id;
    const body = { iova: '0x100000', length: '0x1000', userAddress: '0x0', read: true, write: true };
    const first = await as(alice.token, 'POST', `/v1/ioas/${ioas}/mappings`, body, 'map-1');
    const retry = await as(alice.token, 'POST', `/v1/ioas/${ioas}/mappings`, body, 'map-1');
    expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
    expect(retry.body).toBe(first.body);
    expectProblem(await as(alice.token, 'POST', `/v1/ioas/${ioas}/mappings`, body), 409, 'EEXIST');
  });

  it('replays a refusal as it was, even after the state changed', async () => {
    const { t, alice, as } = await setup();
    const ctx = (await as(alice.token, 'POST', '/v1/contexts', {})).json().id;
    const refused = await as(alice.token, 'POST', '/v1/ioas', { contextId: 'ctx-missing' }, 'k');
    expectProblem(refused, 404, 'ENOENT');
    const replay = await as(alice.token, 'POST', '/v1/ioas', { contextId: 'ctx-missing' }, 'k');
    expect(replay.statusCode).toBe(404);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(replay.json()).toEqual(refused.json());
    expect(ctx).toBeTypeOf('string');
    expect(t.app.ioasd.objects.all('ioas').size).toBe(0);
  });

  it('the same key with another method, path or body is 422; a malformed key is 400; keys are per principal', async () => {
    const { t, alice, as } = await setup();
    expect((await as(alice.token, 'POST', '/v1/contexts', { name: 'a' }, 'shared-key')).statusCode).toBe(201);
    expectProblem(await as(alice.token, 'POST', '/v1/contexts', { name: 'b' }, 'shared-key'), 422, 'EINVAL');
    expectProblem(await as(alice.token, 'POST', '/v1/ioas', { contextId: 'x' }, 'shared-key'), 422, 'EINVAL');
    expectProblem(await as(alice.token, 'POST', '/v1/contexts', {}, ''), 400, 'EINVAL');
    expectProblem(await as(alice.token, 'POST', '/v1/contexts', {}, 'x'.repeat(256)), 400, 'EINVAL');
    expectProblem(await as(alice.token, 'POST', '/v1/contexts', {}, 'tab\there'), 400, 'EINVAL');
    // Another principal's identical key is its own.
    const bob = await t.user('bob');
    const bobs = await as(bob.token, 'POST', '/v1/contexts', { name: 'a' }, 'shared-key');
    expect(bobs.statusCode).toBe(201);
    expect(bobs.headers['idempotent-replayed']).toBeUndefined();
  });

  it('is stored in the change\'s transaction, and never keeps a bearer token', async () => {
    const { t, as } = await setup();
    const created = await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'carol' }, headers: { 'idempotency-key': 'mk-carol' } });
    expect(created.statusCode).toBe(201);
    const token = created.json().token as string;
    const rows = t.app.ioasd.db.prepare('SELECT body FROM idempotency').pluck().all() as string[];
    expect(rows.some((r) => r.includes(token))).toBe(false);
    const replay = await t.admin({ method: 'POST', url: '/v1/principals', payload: { name: 'carol' }, headers: { 'idempotency-key': 'mk-carol' } });
    expect(replay.json().id).toBe(created.json().id);
    expect(replay.json().token).not.toBe(token);
    // The record is written with the change: both there.
    expect(t.app.ioasd.db.prepare("SELECT count(*) FROM idempotency WHERE key = 'mk-carol'").pluck().get()).toBe(1);
    expect(as).toBeTypeOf('function');
  });

  it('expires after 24 hours: the sweep removes old records', async () => {
    const { t } = await setup();
    t.app.ioasd.store.putIdempotency({ principalId: 'admin', key: 'old', digest: 'd', status: 201, body: '{}', createdAt: Date.now() - 25 * 3600 * 1000 });
    t.app.ioasd.store.putIdempotency({ principalId: 'admin', key: 'new', digest: 'd', status: 201, body: '{}', createdAt: Date.now() });
    expect(t.app.ioasd.store.expireIdempotency(Date.now() - 24 * 3600 * 1000)).toBe(1);
    expect(t.app.ioasd.store.getIdempotency('admin', 'old')).toBeUndefined();
    expect(t.app.ioasd.store.getIdempotency('admin', 'new')).toBeDefined();
  });
});
