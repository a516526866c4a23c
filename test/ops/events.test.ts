import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type App, type AppOptions } from '../../src/app.js';
import { ADMIN_TOKEN } from '../helpers.js';
import { SseClient } from './sse-client.js';

/** A JSON answer or event data, read loosely in assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Data = any;

const VF = '0000:02:01.0'; // tenant-a, alone in group 3
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function server(options: Partial<AppOptions> = {}): Promise<{ app: App; url: string; call: (token: string, method: string, path: string, body?: unknown) => Promise<{ status: number; json: Data }> }> {
  const app = await buildApp({ db: ':memory:', adminToken: ADMIN_TOKEN, leaseCheckMs: 0, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  cleanup.push(() => app.close());
  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await app.inject({ method: method as 'GET', url: path, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : undefined };
  };
  return { app, url, call };
}

async function user(call: Awaited<ReturnType<typeof server>>['call'], name: string, clearances: string[]) {
  const res = await call(ADMIN_TOKEN, 'POST', '/v1/principals', { name, clearances });
  expect(res.status).toBe(201);
  return res.json as { id: string; token: string };
}

async function stream(url: string, token: string, headers: Record<string, string> = {}, query = ''): Promise<SseClient> {
  const c = await SseClient.open(`${url}/v1/events${query}`, { authorization: `Bearer ${token}`, ...headers });
  cleanup.push(() => c.close());
  return c;
}

describe('GET /v1/events', () => {
  it('streams every committed change in order, one event per object, with the state its GET shows', async () => {
    const { url, call } = await server();
    const alice = await user(call, 'alice', ['tenant-a']);
    const sse = await stream(url, alice.token);
    expect(sse.status).toBe(200);
    const ctx = (await call(alice.token, 'POST', '/v1/contexts', { name: 'vm' })).json.id as string;
    const ioas = (await call(alice.token, 'POST', '/v1/ioas', { contextId: ctx })).json.id as number;
    const batch = await call(alice.token, 'POST', `/v1/ioas/${ioas}/mappings/batch`, {
      mappings: [1, 2, 3].map((i) => ({ iova: `0x${(i * 0x100000).toString(16)}`, length: '0x1000', userAddress: '0x0', read: true, write: true })),
    });
    expect(batch.status).toBe(201);
    await sse.until(() => sse.events('mapping.created').length === 3);
    const types = sse.messages.map((m) => m.event);
    expect(types).toEqual(['context.created', 'ioas.created', 'mapping.created', 'mapping.created', 'mapping.created']);
    const seqs = sse.messages.map((m) => Number(m.id));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const first = sse.messages[0]!.data as Data;
    expect(first).toMatchObject({ seq: seqs[0], type: 'context.created', object: { kind: 'context', id: ctx }, state: { id: ctx, name: 'vm' } });
    expect(typeof first.at).toBe('string');
    expect((sse.messages[1]!.data as Data).state).toMatchObject({ id: ioas, contextId: ctx });
    expect(sse.events('mapping.created').map((m) => (m.data as Data).state.iova)).toEqual(['0x100000', '0x200000', '0x300000']);
    // A delete is one event per object gone, state null.
    expect((await call(alice.token, 'DELETE', `/v1/contexts/${ctx}`)).status).toBe(204);
    await sse.until(() => sse.events('context.deleted').length === 1);
    expect(sse.events('mapping.removed')).toHaveLength(3);
    expect(sse.events('ioas.deleted').map((m) => (m.data as Data).state)).toEqual([null]);
  });

  it('shows a user its own objects and the inventory, with other owners as "other"; an admin everything', async () => {
    const { url, call } = await server();
    const alice = await user(call, 'alice', ['tenant-a']);
    const bob = await user(call, 'bob', ['tenant-a']);
    const bobs = await stream(url, bob.token);
    const admins = await stream(url, ADMIN_TOKEN);
    const ctx = (await call(alice.token, 'POST', '/v1/contexts', {})).json.id as string;
    expect((await call(alice.token, 'POST', `/v1/devices/${VF}/bind`, { contextId: ctx })).status).toBe(200);
    await admins.until(() => admins.events('device.bound').length === 1);
    await bobs.until(() => bobs.events('group.claimed').length === 1);
    expect(bobs.events('context.created')).toEqual([]);
    expect(bobs.events('device.bound')).toEqual([]);
    expect((bobs.events('group.claimed')[0]!.data as Data).state).toMatchObject({ id: 3, owner: 'other' });
    expect((admins.events('group.claimed')[0]!.data as Data).state).toMatchObject({ id: 3, owner: ctx });
    expect(admins.events().map((m) => m.event)).toEqual(expect.arrayContaining(['context.created', 'group.claimed', 'device.bound']));
    // Principals are admins' business.
    await user(call, 'carol', []);
    await admins.until(() => admins.events('principal.created').length === 1);
    expect((await call(bob.token, 'POST', '/v1/contexts', {})).status).toBe(201);
    await bobs.until(() => bobs.events('context.created').length === 1);
    expect(bobs.events('principal.created')).toEqual([]);
  });

  it('resumes after Last-Event-ID or ?after= across a restart, and sends reset when resuming before the oldest kept event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ioasd-events-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'ioasd.db');
    let s = await server({ db });
    const ctx1 = (await s.call(ADMIN_TOKEN, 'POST', '/v1/contexts', {})).json.id as string;
    const first = await stream(s.url, ADMIN_TOKEN, {}, '?after=0');
    await first.until(() => first.events('context.created').length === 1);
    const seen = first.messages.at(-1)!.id!;
    first.close();
    await s.app.close();
    cleanup.pop();

    s = await server({ db });
    const ctx2 = (await s.call(ADMIN_TOKEN, 'POST', '/v1/contexts', {})).json.id as string;
    const resumed = await stream(s.url, ADMIN_TOKEN, { 'last-event-id': seen });
    await resumed.until(() => resumed.events('context.created').length === 1);
    expect(resumed.events('context.created').map((m) => (m.data as Data).object.id)).toEqual([ctx2]);
    expect(Number(resumed.messages[0]!.id)).toBe(Number(seen) + 1);
    expect(ctx1).not.toBe(ctx2);

    // Retention: keep 1 event; a client resuming from 0 is told to re-list, then gets what is kept.
    s.app.ioasd.store.pruneEvents(1);
    const late = await stream(s.url, ADMIN_TOKEN, {}, '?after=0');
    await late.until(() => late.messages.length >= 2);
    expect(late.messages[0]!.event).toBe('reset');
    expect(late.messages[1]!.event).toBe('context.created');
  });

  it('sends a keep-alive comment on an idle stream, and answers a bad position with 400', async () => {
    const { url, call } = await server({ events: { keepAliveMs: 50 } });
    const idle = await stream(url, ADMIN_TOKEN);
    await idle.until(() => idle.comments.includes('keep-alive'));
    expect(idle.messages).toEqual([]);
    const bad = await call(ADMIN_TOKEN, 'GET', '/v1/events?after=0x10');
    expect(bad.status).toBe(400);
    expect(bad.json.errno).toBe('EINVAL');
  });

  it('commits each event with its change: seq is stored, and a refused change writes none', async () => {
    const { app, call } = await server();
    const before = app.ioasd.store.eventBounds().newest;
    expect((await call(ADMIN_TOKEN, 'POST', '/v1/ioas', { contextId: 'nope' })).status).toBe(404);
    expect(app.ioasd.store.eventBounds().newest).toBe(before);
    await call(ADMIN_TOKEN, 'POST', '/v1/contexts', {});
    const rows = app.ioasd.store.eventsAfter(before, 10);
    expect(rows.map((r) => r.type)).toEqual(['context.created']);
  });
});

describe('a slow reader', () => {
  it('is paced by its socket: the server stops reading the log for it until it drains, then it gets everything in order', async () => {
    const { app, url, call } = await server();
    // A raw client that reads nothing at first.
    let received = '';
    let res: IncomingMessage | null = null;
    await new Promise<void>((resolve) => {
      const req = request(`${url}/v1/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${ADMIN_TOKEN}` } }, (r) => {
        res = r;
        r.pause();
        resolve();
      });
      req.end();
    });
    cleanup.push(() => void res?.destroy());
    const ctx = (await call(ADMIN_TOKEN, 'POST', '/v1/contexts', {})).json.id as string;
    const ioas = (await call(ADMIN_TOKEN, 'POST', '/v1/ioas', { contextId: ctx })).json.id as number;
    const n = 30_000;
    for (let i = 0; i < n; i += 1000) {
      const mappings = Array.from({ length: 1000 }, (_, j) => ({ iova: `0x${((i + j + 1) * 0x10000).toString(16)}`, length: '0x1000', userAddress: '0x0', read: true, write: true }));
      expect((await call(ADMIN_TOKEN, 'POST', `/v1/ioas/${ioas}/mappings/batch`, { mappings })).status).toBe(201);
    }
    const newest = app.ioasd.store.eventBounds().newest;
    await new Promise((r) => setTimeout(r, 200));
    const [sub] = [...app.eventHub.subscribers];
    // Paused: far behind the log, holding at most what the socket buffers took.
    expect(sub!.position()).toBeLessThan(newest);
    res!.setEncoding('utf8');
    res!.on('data', (chunk: string) => (received += chunk));
    res!.resume();
    const deadline = Date.now() + 30_000;
    while ((received.match(/event: mapping\.created/g) ?? []).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ids = [...received.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    // The stream opens with its start position (an id without data), then one id per event.
    expect(ids.length).toBe(n + 3);
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
    expect(sub!.position()).toBe(newest);
  });
});
