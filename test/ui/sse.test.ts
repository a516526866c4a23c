import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { followEvents, SseParser, StreamRefused, type SseMessage } from '../../src/http/ui/sse.js';

/**
 * The one event-stream client (the page's, and ioasctl events'): the parser on any chunking, the
 * follower against a real server and against a plain HTTP server that misbehaves on purpose.
 */

describe('SseParser', () => {
  // One block of the stream: an event (data lines, maybe an id, a type, a retry, a comment before
  // it), or an id alone (no event, the position moves; an empty id clears it).
  const block = fc.oneof(
    fc.record({
      kind: fc.constant('event' as const),
      id: fc.option(fc.stringMatching(/^[0-9a-z-]{1,8}$/), { nil: undefined }),
      idLast: fc.boolean(),
      event: fc.option(fc.stringMatching(/^[a-z]{1,6}(\.[a-z-]{1,8})?$/), { nil: undefined }),
      // Data lines hold no CR or LF of their own; several lines join with LF.
      data: fc.array(fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '{', '}', '"', 'é', '€', '\uFEFF') }), { minLength: 1, maxLength: 3 }),
      retry: fc.option(fc.nat({ max: 99_999 }), { nil: undefined }),
      comment: fc.option(fc.stringMatching(/^[a-z -]{0,12}$/), { nil: undefined }),
    }),
    fc.record({ kind: fc.constant('id' as const), id: fc.stringMatching(/^[0-9a-z-]{0,8}$/) }),
  );

  it('reads the same events, comments, last event id and retry whatever the line ends, BOM and cuts; the id moves only when its event is complete', () => {
    fc.assert(
      fc.property(fc.array(block, { maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r'), fc.boolean(), fc.string({ maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (blocks, eol, bom, startId, cuts) => {
        let text = bom ? '\uFEFF' : '';
        let lastId = startId;
        let retry: number | null = null;
        const expected: SseMessage[] = [];
        const comments: string[] = [];
        // Where each block is dispatched (just past the CR or LF ending its empty line), and the id then.
        const dispatched: { at: number; id: string }[] = [];
        for (const b of blocks) {
          if (b.kind === 'id') {
            text += `id: ${b.id}${eol}`;
            lastId = b.id;
          } else {
            if (b.comment !== undefined) {
              text += `: ${b.comment}${eol}`;
              comments.push(b.comment);
            }
            if (b.id !== undefined && !b.idLast) text += `id: ${b.id}${eol}`;
            if (b.event !== undefined) text += `event:${b.event}${eol}`;
            for (const line of b.data) text += `data: ${line}${eol}`;
            if (b.retry !== undefined) text += `retry: ${b.retry}${eol}`;
            if (b.id !== undefined && b.idLast) text += `id:${b.id}${eol}`;
            if (b.id !== undefined) lastId = b.id;
            if (b.retry !== undefined) retry = b.retry;
            expected.push({ id: lastId, event: b.event ?? 'message', data: b.data.join('\n') });
          }
          dispatched.push({ at: text.length + 1, id: lastId });
          text += eol;
        }
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const seen: string[] = [];
        const parser = new SseParser({ lastEventId: startId, onComment: (c) => seen.push(c) });
        const got: SseMessage[] = [];
        let from = 0;
        for (const p of [...points, text.length]) {
          got.push(...parser.feed(text.slice(from, p)));
          from = p;
          expect(parser.lastEventId).toBe(dispatched.filter((d) => d.at <= p).at(-1)?.id ?? startId);
        }
        expect(got).toEqual(expected);
        expect(seen).toEqual(comments);
        expect(parser.retry).toBe(retry);
      }),
    );
  });

  it('follows the standard on the edge cases', () => {
    const p = new SseParser();
    // One leading space is dropped, a second is kept; a field without a colon has an empty value.
    expect(p.feed('data:  two\ndata\n\n')).toEqual([{ id: '', event: 'message', data: ' two\n' }]);
    // No data: nothing is dispatched, and the event type does not leak into the next event.
    expect(p.feed('event: lonely\n\ndata: x\n\n')).toEqual([{ id: '', event: 'message', data: 'x' }]);
    // An id with NUL is ignored; retry takes digits only; unknown fields are ignored.
    expect(p.feed('id: 7\n\nid: a\u0000b\nretry: 2500\nretry: soon\nretry: -1\nfoo: bar\ndata: y\n\n')).toEqual([{ id: '7', event: 'message', data: 'y' }]);
    expect(p.retry).toBe(2500);
    // A CR at the end of a chunk, then the LF of the same CRLF.
    expect(p.feed('data: z\r')).toEqual([]);
    expect(p.feed('')).toEqual([]);
    expect(p.feed('\n\r')).toEqual([{ id: '7', event: 'message', data: 'z' }]);
    expect(p.feed('\n')).toEqual([]);
    // Line ends may be mixed; only the first character of the stream may be a BOM that is dropped.
    expect(p.feed('data: a\r\ndata: \uFEFFb\rid: 8\n\r\n')).toEqual([{ id: '8', event: 'message', data: 'a\n\uFEFFb' }]);
  });

  it("an id alone moves the position without an event (ioasd's connect line); an empty id clears it", () => {
    const p = new SseParser({ lastEventId: '3' });
    expect(p.feed(': connected\nid: 42\n\n')).toEqual([]);
    expect(p.lastEventId).toBe('42');
    // An event without an id of its own carries the last one.
    expect(p.feed('event: reset\ndata: {}\n\n')).toEqual([{ id: '42', event: 'reset', data: '{}' }]);
    expect(p.feed('data: no id\nid\n\n')).toEqual([{ id: '', event: 'message', data: 'no id' }]);
    expect(p.lastEventId).toBe('');
  });

  it('a stream cut inside an event leaves the position before it, so a resumption asks for that event again', () => {
    const p = new SseParser({ lastEventId: '5' });
    expect(p.feed('id: 6\nevent: context.created\ndata: {"seq":6}\n')).toEqual([]);
    expect(p.lastEventId).toBe('5');
    // A resumed stream starts with an empty buffer but the position it resumed from.
    const resumed = new SseParser({ lastEventId: p.lastEventId });
    expect(resumed.feed('data: no id yet\n\n')).toEqual([{ id: '5', event: 'message', data: 'no id yet' }]);
  });
});

describe('followEvents against the server', () => {
  const ADMIN = 'sse-client-admin-token-0123456789';
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(): Promise<string> {
    app = await buildApp({ db: ':memory:', adminToken: ADMIN, leaseCheckMs: 0 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }

  async function until(check: () => boolean): Promise<void> {
    await expect.poll(check, { timeout: 10_000, interval: 20 }).toBe(true);
  }

  it('resumes after a dropped connection with Last-Event-ID: every event once, in order', async () => {
    const base = await serve();
    const createContext = async (name: string) => {
      const res = await fetch(`${base}/v1/contexts`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      expect(res.status).toBe(201);
    };
    const seen: { id: string; event: string; data: { seq: number; object: { kind: string }; state: { name: string } } }[] = [];
    const opens: boolean[] = [];
    const statuses: string[] = [];
    const abort = new AbortController();
    const done = followEvents({
      url: `${base}/v1/events`,
      token: ADMIN,
      signal: abort.signal,
      retryMs: 20,
      onOpen: ({ resumed }) => void opens.push(resumed),
      onStatus: (s) => void statuses.push(s),
      onEvent: (e) => void seen.push(e as (typeof seen)[number]),
    });
    await until(() => opens.length === 1);
    for (const n of ['a', 'b', 'c']) await createContext(n);
    await until(() => seen.length === 3);

    // The server drops the connection; changes made meanwhile are replayed on reconnection.
    for (const s of app!.eventHub.subscribers) s.reply.raw.destroy();
    await createContext('d');
    await createContext('e');
    await until(() => seen.length === 5);
    await createContext('f');
    await until(() => seen.length === 6);
    abort.abort();
    await done;

    expect(opens).toEqual([false, true]);
    expect(statuses).toContain('disconnected');
    expect(statuses.at(-1)).toBe('closed');
    expect(seen.map((e) => [e.event, e.data.state.name])).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => ['context.created', n]));
    const seqs = seen.map((e) => e.data.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(6);
    expect(seen.map((e) => e.id)).toEqual(seqs.map(String));
  });

  it('a drop before any event resumes from the position the stream started at: no re-listing, nothing missed', async () => {
    const base = await serve();
    const opens: { resumed: boolean; lastEventId: string }[] = [];
    const seen: { id: string; data: { state: { name: string } } }[] = [];
    const abort = new AbortController();
    const done = followEvents({
      url: `${base}/v1/events`,
      token: ADMIN,
      signal: abort.signal,
      retryMs: 20,
      onOpen: (o) => void opens.push(o),
      onEvent: (e) => void seen.push(e as (typeof seen)[number]),
    });
    await until(() => opens.length === 1);
    // The server said where the stream starts (`id: N` alone); the stream drops before any event.
    const start = app!.ioasd.store.eventBounds().newest;
    for (const s of app!.eventHub.subscribers) s.reply.raw.destroy();
    const res = await fetch(`${base}/v1/contexts`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'while-away' }) });
    expect(res.status).toBe(201);
    await until(() => seen.length === 1);
    abort.abort();
    await done;
    expect(opens).toEqual([
      { resumed: false, lastEventId: '' },
      { resumed: true, lastEventId: String(start) },
    ]);
    expect(seen.map((e) => [e.id, e.data.state.name])).toEqual([[String(start + 1), 'while-away']]);
  });

  it('stops with StreamRefused on a refused token, and resolves when aborted', async () => {
    const base = await serve();
    const refused = await followEvents({ url: `${base}/v1/events`, token: 'wrong-token-0123456789', onEvent: () => {} }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamRefused);
    expect((refused as StreamRefused).status).toBe(401);
    expect((refused as StreamRefused).body).toMatchObject({ errno: 'EACCES' });

    const abort = new AbortController();
    let opened: () => void = () => {};
    const open = new Promise<void>((resolve) => (opened = resolve));
    const done = followEvents({ url: `${base}/v1/events`, token: ADMIN, signal: abort.signal, onEvent: () => {}, onOpen: () => opened() });
    await open;
    abort.abort();
    await expect(done).resolves.toBeUndefined();
  });
});

describe('followEvents against a server that misbehaves on purpose', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  /** A plain HTTP server answering each request with `answer`; it records every request's headers. */
  async function serve(answer: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; requests: IncomingMessage['headers'][] }> {
    const requests: IncomingMessage['headers'][] = [];
    server = createServer((req, res) => {
      requests.push(req.headers);
      answer(req, res, requests.length);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, requests };
  }

  const stream = (res: ServerResponse, text: string) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(text);
  };

  it('retries 429 and 5xx, drops a silent connection, honours retry:, resumes from an id sent alone, and delivers nothing after an abort', async () => {
    const { url, requests } = await serve((req, res, n) => {
      if (n === 1) res.writeHead(429, { 'content-type': 'application/problem+json' }).end('{"errno":"EAGAIN","detail":"slow down"}');
      else if (n === 2) res.writeHead(503).end('busy');
      // Where the stream starts (CRLF, a BOM, a retry), then nothing more: not even a keep-alive.
      else if (req.headers['last-event-id'] === undefined) stream(res, '\uFEFF: connected\r\nretry: 5\r\nid: 10\r\n\r\n');
      // Resumed: two events in one write, and a third in another.
      else {
        stream(res, 'id: 11\nevent: a\ndata: {"n":1}\n\nid: 12\nevent: a\ndata: {"n":2}\n\n');
        setTimeout(() => res.write('id: 13\nevent: a\ndata: {"n":3}\n\n'), 50);
      }
    });
    const statuses: [string, string?, number?][] = [];
    const seen: unknown[] = [];
    const abort = new AbortController();
    await followEvents({
      url,
      token: 'T',
      headers: { 'x-extra': 'yes' },
      signal: abort.signal,
      retryMs: 10,
      idleMs: 300,
      onStatus: (s, info) => void statuses.push(info ? [s, (info.error as Error | undefined)?.message, info.retryInMs] : [s]),
      onEvent: (e) => {
        seen.push(e);
        abort.abort();
      },
    });
    expect(seen).toEqual([{ id: '11', event: 'a', data: { n: 1 } }]);
    // Backing off from 10 ms; an answered connection starts again from the stream's `retry:`.
    expect(statuses.filter(([s]) => s === 'disconnected')).toEqual([
      ['disconnected', 'event stream answered HTTP 429: slow down', 10],
      ['disconnected', 'event stream answered HTTP 503: busy', 20],
      ['disconnected', 'no data for 0.3 s', 5],
    ]);
    expect(statuses.at(-1)).toEqual(['closed']);
    const last = requests.at(-1)!;
    expect(last['last-event-id']).toBe('10');
    expect(requests.every((h) => h.authorization === 'Bearer T' && h['x-extra'] === 'yes' && h.accept === 'text/event-stream')).toBe(true);
    expect(requests.slice(0, 3).map((h) => h['last-event-id'])).toEqual([undefined, undefined, undefined]);
  });

  it('an answer that is not an event stream (another type, no type, 204) ends it at once, as EventSource fails the connection', async () => {
    const answers: ((res: ServerResponse) => void)[] = [
      (res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>a proxy login page</html>'),
      (res) => res.writeHead(200).end('id: 1\ndata: x\n\n'),
      (res) => res.writeHead(204).end(),
    ];
    const { url, requests } = await serve((_req, res, n) => answers[n - 1]!(res));
    const why: unknown[] = [];
    for (let i = 0; i < answers.length; i++) why.push(await followEvents({ url, retryMs: 10, onEvent: () => {} }).catch((e: unknown) => e));
    expect(why.map((e) => [e instanceof StreamRefused, (e as StreamRefused).status, (e as Error).message])).toEqual([
      [true, 200, 'event stream refused: HTTP 200 with text/html; charset=utf-8, not text/event-stream'],
      [true, 200, 'event stream refused: HTTP 200 without a content type, not text/event-stream'],
      [true, 204, 'event stream refused: HTTP 204 without a content type, not text/event-stream'],
    ]);
    expect((why[0] as StreamRefused).body).toBe('<html>a proxy login page</html>');
    // One request each: none of them was retried.
    expect(requests).toHaveLength(3);
  });

  it('a refusal with a text body ends it with that body; an error thrown by a callback ends it too, without retrying', async () => {
    const { url, requests } = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(403, { 'content-type': 'text/plain' }).end('go away');
      else stream(res, 'id: 1\ndata: x\n\n');
    });
    const refused = await followEvents({ url, onEvent: () => {} }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamRefused);
    expect(refused).toMatchObject({ status: 403, body: 'go away' });

    const failed = await followEvents({
      url,
      retryMs: 10,
      onEvent: () => {
        throw new Error('handler bug');
      },
    }).catch((e: unknown) => e);
    expect((failed as Error).message).toBe('handler bug');
    expect(requests).toHaveLength(2);
  });
});
