import type { FastifyBaseLogger } from 'fastify';
import { destination as fdDestination, pino, type DestinationStream, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

const CENSOR = '[redacted]';
const SECRET_KEY = /"(token|authorization)"/i;

/**
 * JSON lines on stdout, or pino-pretty's readable lines when stdout is a terminal (a person
 * watching; pipe it, e.g. `| cat`, for JSON). The Authorization header and any token field are
 * never written (see {@link redactSecrets}).
 */
export function createLogger(level: string, destination?: DestinationStream): FastifyBaseLogger {
  const options: LoggerOptions = { level, hooks: { streamWrite: redactSecrets } };
  if (destination) return pino(options, destination);
  if (process.stdout.isTTY) return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', sync: true }));
  return pino(options, oneWritePerTurn(fdDestination({ dest: 1, sync: false })));
}

/**
 * A log line as written: any `token` or `authorization` field, at any depth (a header, a body, an
 * error's property), has its value replaced by "[redacted]". pino's own `redact` does this per
 * path, but a wildcard path (`*.token`) runs its redactor on every field of every line, a clone and
 * a path walk each: a fifth of the work of a GET /healthz. Here a line is searched once for the
 * two names, and only a line that has one is parsed and written again.
 */
export function redactSecrets(line: string): string {
  if (!SECRET_KEY.test(line)) return line;
  const censored = JSON.stringify(JSON.parse(line), (key, value: unknown) => (/^(token|authorization)$/i.test(key) ? CENSOR : value));
  return line.endsWith('\n') ? `${censored}\n` : censored;
}

interface Flushable extends DestinationStream {
  flushSync(): void;
}

/**
 * The lines of one event-loop turn handed to sonic-boom as one string. sonic-boom appends each
 * write to its pending text and measures that text's UTF-8 length every time, so under load (two
 * lines a request, many requests a turn) a write cost grows with what is already pending; one write
 * a turn keeps it to one measure. Still asynchronous, as pino's default destination is; what is
 * pending is written out synchronously when the process exits.
 */
export function oneWritePerTurn(out: Flushable): DestinationStream & { flushSync(): void } {
  let pending: string[] = [];
  const drain = (): void => {
    if (pending.length === 0) return; // flushed synchronously since
    const text = pending.join('');
    pending = [];
    out.write(text);
  };
  const flushSync = (): void => {
    drain();
    out.flushSync();
  };
  process.on('exit', flushSync);
  return {
    write(line: string) {
      if (pending.push(line) === 1) setImmediate(drain);
    },
    flushSync,
  };
}
