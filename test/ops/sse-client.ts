import { request as httpRequest, type IncomingMessage } from 'node:http';
import { SseParser } from '../../src/http/ui/sse.js';

export interface SseMessage {
  /** The last event id when it came (its own `id:`, else the one before it). */
  id: string;
  event: string;
  data: unknown;
}

/**
 * An SSE reader over node:http for tests: collects messages (data parsed as JSON) and comments,
 * resolves waits. Never shares the server's process state: it reads the bytes a real client would,
 * with the clients' one parser (src/http/ui/sse.js).
 */
export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  status = 0;
  private readonly parser = new SseParser({ onComment: (c) => this.comments.push(c) });
  private waiters: (() => void)[] = [];
  private res: IncomingMessage | null = null;
  private ended = false;

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const c = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => c.feed(chunk));
        res.on('end', () => {
          c.ended = true;
          c.notify();
        });
        resolve();
      });
      req.on('error', reject);
      req.end();
    });
    return c;
  }

  private feed(chunk: string): void {
    for (const m of this.parser.feed(chunk)) this.messages.push({ id: m.id, event: m.event, data: JSON.parse(m.data) as unknown });
    this.notify();
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `ready()` holds (or fails after `ms`). */
  async until(ready: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (this.ended) throw new Error(`stream ended; got ${JSON.stringify(this.messages.map((m) => m.event))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.messages.map((m) => m.event))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  events(type?: string): SseMessage[] {
    return type === undefined ? this.messages : this.messages.filter((m) => m.event === type);
  }

  close(): void {
    this.res?.destroy();
  }
}
