/**
 * Server-sent events over fetch(), for a stream that needs an Authorization header (EventSource
 * cannot send one). The parser follows the HTML standard's event-stream interpretation; the
 * follower reconnects with Last-Event-ID so no event is lost across a dropped connection.
 * Runs as is in a browser and in Node 20 (both have fetch, ReadableStream and TextDecoderStream).
 */

/**
 * Incremental text/event-stream parser: feed() it decoded text in any chunking (lines end with CRLF,
 * LF or CR), it answers the complete events, `{id, event, data}`, in order. `id` is the last event
 * id seen so far (it carries over to later events without one, as the standard says).
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.afterCR = false;
    this.lastEventId = '';
    this.retry = null;
    this.reset();
  }

  reset() {
    this.eventType = '';
    this.data = [];
  }

  /** Parses what `text` completes; a trailing partial line waits for the next chunk. */
  feed(text) {
    const out = [];
    const s = this.buffer + text;
    if (s === '') return out;
    let i = 0;
    // The previous chunk ended with a CR: a LF starting this one is the rest of that CRLF.
    if (this.afterCR && s.charCodeAt(0) === 10) i = 1;
    this.afterCR = false;
    let start = i;
    for (; i < s.length; i++) {
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
    if (line === '') {
      if (this.data.length > 0) {
        out.push({ id: this.lastEventId, event: this.eventType || 'message', data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment: keep-alives
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
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
      const parser = new SseParser();
      parser.lastEventId = last;
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
