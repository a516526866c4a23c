import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';
import { SseClient } from '../ops/sse-client.js';

/**
 * The HTTP hygiene against GET /v1/events, on a real server: the request, header and keep-alive
 * timeouts (shortened here) end slow requests, never an event stream that is under way; HEAD and
 * other methods on the stream's path answer and end. Nothing asserts how long anything took: the
 * stream's age is counted in the keep-alives it received.
 */

const TIMEOUTS = { headersTimeoutMs: 200, requestTimeoutMs: 300, keepAliveTimeoutMs: 200, timeoutCheckMs: 50 };
const KEEP_ALIVE_MS = 100;

let t: TestApp;
let port: number;
beforeAll(async () => {
  t = await testApp({ leaseCheckMs: 0, http: TIMEOUTS, events: { keepAliveMs: KEEP_ALIVE_MS } });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(() => t.close());

/** Writes `request` on a fresh connection and collects every byte the server sends until it closes or `ms` pass. */
function raw(request: string, ms: number): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer: false });
    }, ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByServer: true });
    });
    socket.on('connect', () => socket.write(request));
  });
}

describe('an event stream and the timeouts', () => {
  it('a slow request on this server is cut by the request timeout (408), so the timeouts are in force', async () => {
    const stalled = await raw(`POST /v1/contexts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{`, 10_000);
    expect(stalled.closedByServer).toBe(true);
    expect(stalled.text).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a stream outlives many request and keep-alive timeouts while it sends keep-alives, and still delivers events', async () => {
    const sse = await SseClient.open(`http://127.0.0.1:${port}/v1/events`, { authorization: `Bearer ${ADMIN_TOKEN}` });
    try {
      expect(sse.status).toBe(200);
      // 12 keep-alives, one every 100 ms: the stream has lived past the 300 ms request timeout
      // (checked every 50 ms) several times over.
      const keepAlives = () => sse.comments.filter((c) => c === 'keep-alive').length;
      const enough = Math.ceil((4 * TIMEOUTS.requestTimeoutMs) / KEEP_ALIVE_MS);
      await sse.until(() => keepAlives() >= enough, 20_000);
      const made = await t.admin({ method: 'POST', url: '/v1/contexts', payload: { name: 'late' } });
      expect(made.statusCode).toBe(201);
      await sse.until(() => sse.events('context.created').length === 1, 10_000);
      expect((sse.events('context.created')[0]!.data as { state: { name: string } }).state.name).toBe('late');
    } finally {
      sse.close();
    }
  });
});

describe('other methods on the stream path', () => {
  it('HEAD answers the headers a GET would and ends, so a request after it on the connection is answered', async () => {
    const { text } = await raw(`HEAD /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 10_000);
    const [head, rest] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head.toLowerCase()).toContain('content-type: text/event-stream');
    expect(rest).toMatch(/^HTTP\/1\.1 200 /);
    expect(rest).toContain('"status":"ok"');
    expect(t.app.eventHub.subscribers.size).toBe(0);
  });

  it('OPTIONS lists GET, HEAD and OPTIONS; POST is 405 with the same Allow', async () => {
    const options = await t.admin({ method: 'OPTIONS', url: '/v1/events' });
    expect(options.statusCode).toBe(204);
    expect(options.headers.allow).toBe('GET, HEAD, OPTIONS');
    const post = await t.admin({ method: 'POST', url: '/v1/events', payload: {} });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD, OPTIONS');
  });

  it('an unknown query parameter is 400 on GET and HEAD alike, before any stream starts', async () => {
    const get = await t.admin({ method: 'GET', url: '/v1/events?aftr=3' });
    expect(get.statusCode).toBe(400);
    expect(get.json()).toMatchObject({ errno: 'EINVAL', problems: [{ path: 'query.aftr' }] });
    expect((await t.admin({ method: 'HEAD', url: '/v1/events?aftr=3' })).statusCode).toBe(400);
    expect(t.app.eventHub.subscribers.size).toBe(0);
  });
});
