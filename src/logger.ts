import type { FastifyBaseLogger } from 'fastify';
import { destination as fdDestination, pino, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

const CENSOR = '[redacted]';

/**
 * JSON lines on stdout, or pino-pretty's readable lines when stdout is a terminal (a person
 * watching; pipe it, e.g. `| cat`, for JSON). The Authorization header and any token field are
 * never written (see {@link redactSecrets}).
 */
export function createLogger(level: string, destination?: DestinationStream): FastifyBaseLogger {
  if (destination) return pino({ level }, redacting(destination));
  if (process.stdout.isTTY) return pino({ level }, redacting(pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', sync: true })));
  return pino({ level }, oneWritePerTurn(fdDestination({ dest: 1, sync: false })));
}

const hasSecret = (text: string): boolean => text.includes('"token"') || text.includes('uthorization"');
const censor = (key: string, value: unknown): unknown => (key === 'token' || key === 'authorization' || key === 'Authorization' ? CENSOR : value);

/**
 * Log lines as written (one, or several ending in newlines): any `token`, `authorization` or
 * `Authorization` field, at any depth (a header, a body, an error's property), has its value
 * replaced by "[redacted]". pino's own `redact` does this per path, but a wildcard path
 * (`*.token`) runs its redactor on every field of every line, a clone and a path walk each: a fifth
 * of the work of a GET /healthz. Here the text is searched for the names, and only a line that has
 * one is parsed and written again.
 */
export function redactSecrets(text: string): string {
  if (!hasSecret(text)) return text;
  return text
    .split('\n')
    .map((line) => (line !== '' && hasSecret(line) ? JSON.stringify(JSON.parse(line), censor) : line))
    .join('\n');
}

/** A destination whose every write is redacted. */
function redacting(out: DestinationStream): DestinationStream {
  return { write: (line: string) => out.write(redactSecrets(line)) };
}

interface Flushable extends DestinationStream {
  flushSync(): void;
}

/**
 * The lines of one event-loop turn, redacted together, handed to sonic-boom as one string.
 * sonic-boom appends each write to its pending text and measures that text's UTF-8 length every
 * time, so under load (two lines a request, many requests a turn) a write costs more the more is
 * pending; one write a turn measures once. Still asynchronous, as pino's default destination is;
 * what is pending is written out synchronously when the process exits.
 */
export function oneWritePerTurn(out: Flushable): Flushable {
  let pending: string[] = [];
  const drain = (): void => {
    if (pending.length === 0) return; // flushed synchronously since
    const text = pending.join('');
    pending = [];
    out.write(redactSecrets(text));
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
