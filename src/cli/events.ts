import { CliError, describeProblem, networkReason, type Problem } from './client.js';
import { EXIT, exitForProblem, type ExitCode } from './exit-codes.js';
import { cell } from './output.js';
import type { Context } from './context.js';
import { SseParser } from './sse.js';

export interface EventsOptions {
  after?: string;
  count?: number;
}

/** Resume delays after a drop: 0.25 s, doubling to 5 s; back to 0.25 s once connected. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
/** The server sends a keep-alive comment every 15 s: three missed means the connection is dead. */
const IDLE_MS = 45_000;

const SUMMARY_FIELDS = ['owner', 'contextId', 'driver', 'viable', 'policy', 'previous', 'iova', 'length', 'ioasId', 'hwptId', 'name', 'expiresAt'];

/** An event's state in a few words: the fields a watcher looks for. */
function summary(type: string, state: unknown): string {
  if (state === null) return /\.(deleted|removed|unbound)$/.test(type) ? 'gone' : '';
  if (typeof state !== 'object') return '';
  const s = state as Record<string, unknown>;
  return SUMMARY_FIELDS.filter((k) => s[k] !== undefined && s[k] !== null)
    .map((k) => `${k}=${cell(s[k])}`)
    .join(' ');
}

export function eventLine(data: Record<string, unknown>): string {
  const object = (data.object ?? {}) as { kind?: unknown; id?: unknown };
  return [String(data.seq), String(data.at), String(data.type), `${String(object.kind)} ${String(object.id)}`, summary(String(data.type), data.state)].filter((x) => x !== '').join('  ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Follows GET /v1/events: one line per event (NDJSON with --json). A dropped connection, a server
 * restart or a dead socket is resumed with Last-Event-ID from the last event seen (or the position
 * the server gave on connect), so nothing is missed or repeated; refusals (401, 403, 400) end it.
 */
export async function followEvents(ctx: Context, options: EventsOptions): Promise<ExitCode> {
  const client = ctx.client();
  let last: string | undefined = options.after;
  let seen = 0;
  let delay = FIRST_DELAY_MS;
  let dropped = false;
  const limit = options.count;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new CliError('--count must be a positive integer', EXIT.usage);

  for (;;) {
    const abort = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error('no data for 45 s')), IDLE_MS);
    };
    let reason = 'the server closed the stream';
    let done = false;
    try {
      const headers = client.headers({ accept: 'text/event-stream', ...(last !== undefined && last !== '' ? { 'last-event-id': last } : {}) });
      const res = await fetch(client.url('/v1/events'), { headers, signal: abort.signal });
      if (!res.ok) {
        const text = await res.text();
        let problem: Problem;
        try {
          problem = { ...(JSON.parse(text) as Problem), status: res.status };
        } catch {
          problem = { status: res.status, detail: text.slice(0, 200) };
        }
        // A refusal is final; an overloaded or failing server is retried like a drop.
        if (res.status < 500 && res.status !== 429) throw new CliError(describeProblem(problem), exitForProblem(res.status, problem.errno), problem);
        throw new Error(`${res.status}: ${problem.detail ?? 'server error'}`);
      }
      if (dropped) ctx.io.err(`ioasctl: reconnected; resuming after event ${last === undefined || last === '' ? '(now)' : last}\n`);
      dropped = false;
      delay = FIRST_DELAY_MS;
      watch();
      const parser = new SseParser(
        (m) => {
          if (done) return;
          let data: Record<string, unknown>;
          try {
            data = JSON.parse(m.data) as Record<string, unknown>;
          } catch {
            data = { type: m.event, data: m.data };
          }
          if (m.event === 'reset') {
            if (ctx.json) ctx.io.out(JSON.stringify({ type: 'reset', ...data }) + '\n');
            else ctx.io.out(`reset: events after ${String(data.after)} are gone (the oldest kept is ${String(data.oldest)}): re-list what you watch\n`);
            return;
          }
          ctx.io.out(ctx.json ? JSON.stringify(data) + '\n' : eventLine(data) + '\n');
          seen++;
          if (limit !== undefined && seen >= limit) {
            done = true;
            abort.abort();
          }
        },
        () => watch(),
      );
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        watch();
        parser.feed(decoder.decode(chunk, { stream: true }));
        last = parser.lastEventId === '' ? last : parser.lastEventId;
        if (done) break;
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      if (!done) reason = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason.message : networkReason(err);
    } finally {
      clearTimeout(idle);
    }
    if (done) return EXIT.ok;
    dropped = true;
    ctx.io.err(`ioasctl: event stream lost (${reason}); reconnecting in ${delay / 1000} s\n`);
    await sleep(delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}
