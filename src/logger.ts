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
  return pino({ level }, oneWritePerTurn(fdDestination({ dest: 1, sync: true })));
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
 * The lines of one event-loop turn, redacted together, handed to sonic-boom as one write: one
 * write(2) a turn, however many requests the turn answered, where pino's default destination
 * (asynchronous sonic-boom) appends every line to its pending text and measures that text's UTF-8
 * length each time, a cost that grows with what is pending. The write is synchronous, so memory
 * stays bounded and what is pending when the process exits (a refused start's fatal line) is
 * written before it does; a log reader that stops reading holds the service up instead.
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
