import { followEvents as follow, StreamRefused } from '../http/ui/sse.js';
import { CliError, describeProblem, networkReason, type Problem } from './client.js';
import { EXIT, exitForProblem, type ExitCode } from './exit-codes.js';
import { cell } from './output.js';
import type { Context } from './context.js';

export interface EventsOptions {
  after?: string;
  count?: number;
}

/** Resume delays after a drop: 0.25 s, doubling to 5 s; back to 0.25 s once connected. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

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

/**
 * Follows GET /v1/events with the topology page's client (src/http/ui/sse.js: the parser, and
 * resuming with Last-Event-ID from the last event seen or the position the server gave on connect
 * after a drop, a server restart or 45 s of silence, so nothing is missed or repeated). Here: one
 * line per event (NDJSON with --json), --count, the drops and resumptions said on standard error, and
 * a refusal (401, 403, 400) ending it with the exit status of its errno.
 */
export async function followEvents(ctx: Context, options: EventsOptions): Promise<ExitCode> {
  const client = ctx.client();
  const limit = options.count;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new CliError('--count must be a positive integer', EXIT.usage);
  const enough = new AbortController();
  let seen = 0;
  let dropped = false;
  try {
    await follow({
      url: client.url('/v1/events'),
      headers: client.headers(),
      lastEventId: options.after ?? '',
      retryMs: FIRST_DELAY_MS,
      maxRetryMs: MAX_DELAY_MS,
      signal: enough.signal,
      onStatus: (status, info) => {
        if (status !== 'disconnected' || !info) return;
        dropped = true;
        const reason = info.error === undefined ? 'the server closed the stream' : networkReason(info.error);
        ctx.io.err(`ioasctl: event stream lost (${reason}); reconnecting in ${info.retryInMs / 1000} s\n`);
      },
      onOpen: ({ lastEventId }) => {
        if (dropped) ctx.io.err(`ioasctl: reconnected; resuming after event ${lastEventId === '' ? '(now)' : lastEventId}\n`);
        dropped = false;
      },
      onEvent: ({ event, data: raw }) => {
        const data = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : { type: event, data: raw };
        if (event === 'reset') {
          if (ctx.json) ctx.io.out(JSON.stringify({ type: 'reset', ...data }) + '\n');
          else ctx.io.out(`reset: events after ${String(data.after)} are gone (the oldest kept is ${String(data.oldest)}): re-list what you watch\n`);
          return;
        }
        ctx.io.out(ctx.json ? JSON.stringify(data) + '\n' : eventLine(data) + '\n');
        seen++;
        if (limit !== undefined && seen >= limit) enough.abort();
      },
    });
  } catch (err) {
    if (!(err instanceof StreamRefused)) throw err;
    // Not a refusal but an answer that is no event stream (a proxy's page, a wrong URL): the server side.
    if (err.status < 400) throw new CliError(`${err.message} (is --server the ioasd server?)`, EXIT.server);
    const problem: Problem =
      err.body !== null && typeof err.body === 'object' ? { ...(err.body as Problem), status: err.status } : { status: err.status, detail: String(err.body ?? '').slice(0, 200) || undefined };
    throw new CliError(describeProblem(problem), exitForProblem(err.status, problem.errno), problem);
  }
  return EXIT.ok;
}
