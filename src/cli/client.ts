import { EXIT, exitForProblem, type ExitCode } from './exit-codes.js';
import type { Settings } from './settings.js';

/** A refusal from the server (problem+json), or any answer that is not 2xx. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  errno?: string;
  instance?: string;
  requestId?: string;
  blockers?: { kind: string; id: string; reason: string; owner?: string }[];
  problems?: { path: string; message: string }[];
  [key: string]: unknown;
}

export interface Answer {
  status: number;
  body: unknown;
  /** The answer replays the first answer to this Idempotency-Key. */
  replayed: boolean;
}

/** A failure that ends the command with `exitCode`; `problem` is set for the server's refusals. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly problem?: Problem,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  query?: Record<string, string>;
  body?: unknown;
  idempotencyKey?: string | undefined;
  /** Milliseconds before the request is abandoned (exit 8). */
  timeoutMs?: number;
}

/** Why a connection failed, in words (the cause undici gives, when it gives one). */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is ioasd running there?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if ((err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') return 'timed out';
  return cause?.message ?? (err as Error).message;
}

export class Client {
  constructor(readonly settings: Settings) {}

  url(path: string, query: Record<string, string> = {}): string {
    const qs = new URLSearchParams(query).toString();
    return `${this.settings.server}${path}${qs ? `?${qs}` : ''}`;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.settings.token ? { authorization: `Bearer ${this.settings.token}` } : {}), ...extra };
  }

  /** One request; a refusal throws a {@link CliError} carrying the problem and the exit status of its errno. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const headers = this.headers();
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    let res: Response;
    try {
      res = await fetch(this.url(path, options.query), {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new CliError(`cannot reach ${this.settings.server}: ${networkReason(err)}`, EXIT.server);
    }
    if (res.status >= 200 && res.status < 300) {
      return { status: res.status, body: await bodyOf(res, method, path), replayed: res.headers.get('idempotent-replayed') === 'true' };
    }
    throw await this.refusal(res, method, path);
  }

  /**
   * A GET whose answer is a file (GET /v1/system/backup): the body is written to `sink` as it
   * arrives, never decoded as text; a refusal throws like {@link request}'s. Answers the bytes written.
   */
  async download(path: string, sink: (chunk: Uint8Array) => Promise<void> | void, timeoutMs = 600_000): Promise<number> {
    let res: Response;
    try {
      res = await fetch(this.url(path), { headers: this.headers(), signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new CliError(`cannot reach ${this.settings.server}: ${networkReason(err)}`, EXIT.server);
    }
    if (res.status < 200 || res.status >= 300 || !res.body) throw await this.refusal(res, 'GET', path);
    let bytes = 0;
    try {
      for await (const chunk of res.body) {
        await sink(chunk);
        bytes += chunk.length;
      }
    } catch (err) {
      throw new CliError(`GET ${path}: the answer broke off after ${bytes} bytes: ${networkReason(err)}`, EXIT.server);
    }
    return bytes;
  }

  /** The error a non-2xx answer ends the command with. */
  private async refusal(res: Response, method: string, path: string): Promise<CliError> {
    const type = res.headers.get('content-type') ?? '';
    const body = await bodyOf(res, method, path);
    const problem: Problem =
      body !== null && typeof body === 'object' && !Array.isArray(body)
        ? { ...(body as Problem), status: res.status }
        : { status: res.status, title: res.statusText, detail: typeof body === 'string' ? body.slice(0, 200) : undefined };
    if (res.status === 401 && !this.settings.token) {
      problem.detail = `${problem.detail ?? 'not authenticated'} (no token: give --token, --token-file, IOASD_TOKEN or a config file)`;
    }
    const isProblem = /problem\+json/.test(type);
    const exitCode = isProblem ? exitForProblem(res.status, problem.errno) : res.status === 401 || res.status === 403 ? EXIT.access : EXIT.server;
    return new CliError(describeProblem(problem), exitCode, problem);
  }
}

/** An answer's body: parsed when it is JSON, the text otherwise, undefined when empty. */
async function bodyOf(res: Response, method: string, path: string): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  if (!/json/.test(res.headers.get('content-type') ?? '')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`${method} ${path}: ${res.status} with a body that is not JSON`, EXIT.server);
  }
}

/** One line: errno, status and the server's sentence. */
export function describeProblem(p: Problem): string {
  const head = [p.errno, `${p.status}${p.title ? ` ${p.title}` : ''}`].filter(Boolean).join(' ');
  return `${head}: ${p.detail ?? 'refused'}`;
}
