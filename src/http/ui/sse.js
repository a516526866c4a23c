/**
 * Server-sent events over fetch(), for a stream that needs an Authorization header (EventSource
 * cannot send one): the one client of GET /v1/events, run by the topology page and by `ioasctl
 * events` (its types for TypeScript are in sse.d.ts). The parser follows the HTML standard's
 * event-stream interpretation; the follower reconnects with Last-Event-ID so no event is lost
 * across a dropped connection. It imports nothing, so it runs as is in a browser and in Node 20
 * (both have fetch, ReadableStream and TextDecoderStream).
 */

/**
 * The event-stream parser, as the HTML standard's EventSource interprets a stream: feed() it decoded
 * text in any chunking (a line may end with CRLF, LF or CR, and a chunk may end anywhere, between
 * the CR and LF of one line end too); it answers the events the text completes, `{id, event, data}`,
 * in order, and keeps a trailing partial line for the next chunk.
 *
 * - One U+FEFF (BOM) at the very start of the stream is dropped.
 * - A line starting with `:` is a comment (the server's `: keep-alive`): no event, handed to
 *   `onComment` without its one leading space.
 * - `field: value` (one space after the colon is dropped, a second is kept; a line without a colon
 *   is a field with an empty value): `data` lines join with LF, `event` names the type (`message`
 *   when none), `id` sets the last event id unless it holds NUL (an empty id clears it), `retry`
 *   with digits only sets {@link SseParser#retry}, anything else is ignored.
 * - An empty line dispatches: the last event id takes the id seen so far even when there is no data
 *   (`id: 42` alone moves the position without an event, as ioasd says where a stream starts), then
 *   an event is answered if there was data; the event type and data start again either way.
 * - `lastEventId` changes only on dispatch, so a connection cut inside an event never resumes after
 *   an event that was not delivered. It carries over to later events without an id of their own.
 */
export class SseParser {
  /**
   * @param {{ lastEventId?: string, onComment?: (text: string) => void }} [options] `lastEventId`:
   *   the position a resumed stream starts from (what the reconnection sent as Last-Event-ID).
   */
  constructor({ lastEventId = '', onComment } = {}) {
    /** The last event id: what a reconnection sends as Last-Event-ID ('' for none). */
    this.lastEventId = lastEventId;
    /** The reconnection time the stream asked for (`retry:`), in ms, or null. */
    this.retry = null;
    this.onComment = onComment;
    this.idBuffer = lastEventId;
    this.eventType = '';
    this.data = [];
    this.buffer = '';
    this.started = false;
    this.afterCR = false;
  }

  /** Parses what `text` completes; a trailing partial line waits for the next chunk. */
  feed(text) {
    const out = [];
    if (text === '') return out;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // The previous chunk ended with a CR: a LF starting this one is the rest of that CRLF.
    if (this.afterCR && text.charCodeAt(0) === 10) text = text.slice(1);
    this.afterCR = false;
    const s = this.buffer + text;
    let start = 0;
    // The kept partial line holds no line end: scan only the new text.
    for (let i = this.buffer.length; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(s.slice(start, i), out);
      if (c === 13) {
        if (i + 1 === s.length) this.afterCR = true;
        else if (s.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.buffer = s.slice(start);
    return out;
  }

  line(line, out) {
    if (line === '') return this.dispatch(out);
    if (line.charCodeAt(0) === 58) {
      this.onComment?.(line.startsWith(': ') ? line.slice(2) : line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.eventType = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.idBuffer = value;
    } else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retry = Number(value);
  }

  dispatch(out) {
    this.lastEventId = this.idBuffer;
    if (this.data.length > 0) out.push({ id: this.lastEventId, event: this.eventType || 'message', data: this.data.join('\n') });
    this.eventType = '';
    this.data = [];
  }
}

/**
 * Why a stream stopped for good: the server refused it (401, 403, 400, ...; `body` is its answer,
 * parsed when it is JSON), or answered something that is not an event stream (a 2xx or 3xx whose
 * type is not text/event-stream, or 204: the standard's "fail the connection", never retried). A 429
 * or 5xx answer is not a refusal: it is retried like a drop.
 */
export class StreamRefused extends Error {
  constructor(status, body, why = `HTTP ${status}`) {
    super(`event stream refused: ${why}`);
    this.status = status;
    this.body = body;
  }
}

/** The media type of an answer, without parameters, lowercased ('' when absent). */
const mediaType = (res) => (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();

/** An error thrown by one of the caller's callbacks: it ends the follow instead of counting as a drop. */
class CallbackFailed {
  constructor(error) {
    this.error = error;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** An answer's body: JSON when it parses, else its text ('' when unreadable). */
async function bodyOf(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // the answer broke off: the status says enough
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Follows `url` until `signal` aborts, resuming across drops so no event is lost or repeated:
 *
 * - Each connection sends `Last-Event-ID` once a position is known: `lastEventId` to start with,
 *   then the parser's last event id (the last event delivered, or an id sent alone, as ioasd sends
 *   where a stream starts), so the server replays what was missed (or sends `reset` when that is gone).
 * - `onOpen({resumed, lastEventId})` runs each time a connection is answered (resumed: it carried a
 *   Last-Event-ID), `onEvent({id, event, data})` for each event (`data` parsed as JSON when it is
 *   JSON) in order, each awaited; nothing more is delivered once `signal` aborts.
 * - `onStatus(status, info)`: 'connecting' or 'reconnecting' (with a position), 'live', then on a
 *   drop 'disconnected' with `{error, retryInMs}` (`error` undefined when the server ended the
 *   stream), and 'closed' when aborted.
 * - A drop is retried after `retryMs` (or the stream's `retry:`), doubling up to `maxRetryMs`, back
 *   to the first delay once a connection is answered. A drop is a network error, the end of the
 *   stream, a 429 or 5xx answer, or `idleMs` without a byte (ioasd sends a keep-alive every 15 s: the
 *   default 45 s is three missed; 0 turns it off).
 * - Any other 4xx answer stops for good: the promise rejects with {@link StreamRefused}; so does an
 *   answer that is not an event stream (204, or a type other than text/event-stream), as the
 *   standard's EventSource fails the connection instead of reconnecting. An error thrown by a
 *   callback rejects it too. It resolves when aborted.
 *
 * `token` is sent as a bearer token; `headers` are added to every request.
 */
export async function followEvents({
  url,
  token,
  headers = {},
  onEvent,
  onOpen,
  onStatus,
  signal,
  lastEventId = '',
  retryMs = 1000,
  maxRetryMs = 15000,
  idleMs = 45000,
  fetchImpl = fetch,
}) {
  const call = async (fn, ...args) => {
    try {
      return await fn?.(...args);
    } catch (err) {
      throw new CallbackFailed(err);
    }
  };
  let last = lastEventId;
  let firstDelay = retryMs;
  let delay = retryMs;
  while (!signal?.aborted) {
    // One connection: aborted with `signal`, or when the server says nothing for `idleMs`.
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal?.addEventListener('abort', stop, { once: true });
    let idle;
    let silent = false;
    const watch = () => {
      clearTimeout(idle);
      if (idleMs > 0) {
        idle = setTimeout(() => {
          silent = true;
          connection.abort();
        }, idleMs);
      }
    };
    let error;
    try {
      const sent = { accept: 'text/event-stream', ...headers };
      if (token) sent.authorization = `Bearer ${token}`;
      if (last !== '') sent['last-event-id'] = last;
      await call(onStatus, last === '' ? 'connecting' : 'reconnecting');
      watch();
      const res = await fetchImpl(url, { headers: sent, signal: connection.signal, cache: 'no-store' });
      if (res.status < 400 && (res.status === 204 || mediaType(res) !== 'text/event-stream' || !res.body)) {
        const type = res.headers.get('content-type');
        throw new StreamRefused(res.status, await bodyOf(res), `HTTP ${res.status} ${type ? `with ${type}` : 'without a content type'}, not text/event-stream`);
      }
      if (!res.ok) {
        const body = await bodyOf(res);
        if (res.status >= 400 && res.status < 500 && res.status !== 429) throw new StreamRefused(res.status, body);
        const detail = body && typeof body === 'object' ? body.detail : typeof body === 'string' ? body.slice(0, 200) : '';
        throw new Error(`event stream answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`);
      }
      delay = firstDelay;
      await call(onStatus, 'live');
      // The server's bytes wait in the socket while the callbacks run: only waiting for them is idle.
      clearTimeout(idle);
      await call(onOpen, { resumed: last !== '', lastEventId: last });
      const parser = new SseParser({ lastEventId: last });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        watch();
        const { value, done } = await reader.read();
        clearTimeout(idle);
        if (done) break;
        for (const e of parser.feed(value)) {
          if (signal?.aborted) break;
          let data = e.data;
          try {
            data = JSON.parse(e.data);
          } catch {
            // plain text data stays a string
          }
          await call(onEvent, { id: e.id, event: e.event, data });
          last = e.id;
        }
        if (signal?.aborted) break;
        last = parser.lastEventId;
        if (parser.retry !== null) firstDelay = delay = parser.retry;
      }
      reader.cancel().catch(() => {});
    } catch (err) {
      if (err instanceof CallbackFailed) throw err.error;
      if (err instanceof StreamRefused) throw err;
      error = silent ? new Error(`no data for ${idleMs / 1000} s`) : err;
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener('abort', stop);
      connection.abort();
    }
    if (signal?.aborted) break;
    await call(onStatus, 'disconnected', { error, retryInMs: delay });
    await sleep(delay, signal);
    delay = Math.min(delay * 2, maxRetryMs);
  }
  await call(onStatus, 'closed');
}
