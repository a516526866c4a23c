import { request as httpRequest, type IncomingMessage } from 'node:http';

export interface SseMessage {
  id?: string;
  event: string;
  data: unknown;
}

/**
 * A minimal SSE reader over node:http for tests: collects messages and comments, resolves waits.
 * Never shares the server's process state: it reads the bytes a real client would.
 */
export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  status = 0;
  private buffer = '';
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
    this.buffer += chunk;
    let i: number;
    while ((i = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      const msg: { id?: string; event: string; data: string[] } = { event: 'message', data: [] };
      let any = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('id:')) msg.id = line.slice(3).trim();
        else if (line.startsWith('event:')) msg.event = line.slice(6).trim();
        else if (line.startsWith('data:')) {
          msg.data.push(line.slice(5).replace(/^ /, ''));
          any = true;
        }
      }
      if (any) this.messages.push({ ...(msg.id === undefined ? {} : { id: msg.id }), event: msg.event, data: JSON.parse(msg.data.join('\n')) as unknown });
    }
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
