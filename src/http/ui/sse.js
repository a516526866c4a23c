/**
 * Server-sent events over fetch(), for a stream that needs an Authorization header (EventSource
 * cannot send one). The parser follows the HTML standard's event-stream interpretation; the
 * follower reconnects with Last-Event-ID so no event is lost across a dropped connection.
 * Runs as is in a browser and in Node 20 (both have fetch, ReadableStream and TextDecoderStream).
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

/** Why a stream stopped for good: the server refused it (401, 403, ...), or it was aborted. */
export class StreamRefused extends Error {
  constructor(status, body) {
    super(`event stream refused: HTTP ${status}`);
    this.status = status;
    this.body = body;
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

/**
 * Follows `url` until `signal` aborts: calls `onOpen({resumed})` each time a connection is answered
 * (resumed: it carried a Last-Event-ID), `onEvent(event)` for each event (`data` parsed as JSON when
 * it is JSON), `onStatus(text)` as the connection comes and goes. A dropped connection is retried
 * after `retryMs` (doubling up to `maxRetryMs`, reset by each successful connection) with the last
 * event id, so the server replays what was missed (or sends `reset` when that is gone). A 4xx answer
 * stops for good: the promise rejects with {@link StreamRefused}. Resolves when aborted.
 */
export async function followEvents({ url, token, onEvent, onOpen, onStatus, signal, lastEventId = '', retryMs = 1000, maxRetryMs = 15000, fetchImpl = fetch }) {
  let last = lastEventId;
  let delay = retryMs;
  while (!signal?.aborted) {
    const headers = { accept: 'text/event-stream' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (last !== '') headers['last-event-id'] = last;
    try {
      onStatus?.(last === '' ? 'connecting' : 'reconnecting');
      const res = await fetchImpl(url, { headers, signal, cache: 'no-store' });
      if (res.status >= 400 && res.status < 500) {
        let body = null;
        try {
          body = await res.json();
        } catch {
          // not JSON: the status says enough
        }
        throw new StreamRefused(res.status, body);
      }
      if (!res.ok || !res.body) throw new Error(`event stream answered HTTP ${res.status}`);
      delay = retryMs;
      onStatus?.('live');
      await onOpen?.({ resumed: last !== '' });
      const parser = new SseParser({ lastEventId: last });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const e of parser.feed(value)) {
          last = e.id;
          let data = e.data;
          try {
            data = JSON.parse(e.data);
          } catch {
            // plain text data stays a string
          }
          await onEvent({ id: e.id, event: e.event, data });
        }
        if (parser.retry !== null) delay = parser.retry;
      }
    } catch (err) {
      if (err instanceof StreamRefused) throw err;
      if (signal?.aborted) break;
    }
    if (signal?.aborted) break;
    onStatus?.('disconnected');
    await sleep(delay, signal);
    delay = Math.min(delay * 2, maxRetryMs);
  }
  onStatus?.('closed');
}
