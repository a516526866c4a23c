/**
 * A server-sent events parser as the HTML standard's EventSource reads a stream: lines end in CR,
 * LF or CRLF (split anywhere between chunks), `:` starts a comment, one leading space after the
 * colon is dropped, `data` lines join with newlines, and the last event id is kept across messages
 * and updated even by a message without data (`id: 42` alone), which ioasd sends on connect so a
 * client that sees no event before a drop still resumes from where it started.
 */
export interface SseMessage {
  /** The last event id in force when the message was dispatched ('' if none yet). */
  id: string;
  event: string;
  data: string;
}

export class SseParser {
  /** The last event id, as EventSource's `lastEventId`: what a reconnect sends as Last-Event-ID. */
  lastEventId = '';
  private buffer = '';
  private idBuffer = '';
  private data: string[] = [];
  private event = '';
  private first = true;
  private afterCr = false;

  constructor(
    private readonly onMessage: (m: SseMessage) => void,
    private readonly onComment: (text: string) => void = () => {},
  ) {}

  feed(chunk: string): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (chunk === '') return;
    // A CR that ended the previous chunk may be the first half of a CRLF: skip its LF.
    if (this.afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.afterCr = false;
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      let end = -1;
      for (let i = start; i < this.buffer.length; i++) {
        const c = this.buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          end = i;
          break;
        }
      }
      if (end < 0) break;
      const line = this.buffer.slice(start, end);
      const cr = this.buffer.charCodeAt(end) === 13;
      if (cr && end === this.buffer.length - 1) this.afterCr = true;
      start = end + (cr && this.buffer.charCodeAt(end + 1) === 10 ? 2 : 1);
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return this.onComment(line.slice(1).replace(/^ /, ''));
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const event = this.event;
    this.data = [];
    this.event = '';
    if (data.length === 0) return;
    this.onMessage({ id: this.lastEventId, event: event === '' ? 'message' : event, data: data.join('\n') });
  }
}
