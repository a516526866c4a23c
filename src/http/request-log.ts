import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';

type Bindings = Record<string, unknown>;
type ChildOptions = { level?: string; serializers?: unknown };
type LogMethod = (...args: unknown[]) => void;

/**
 * A request's logger (`request.log`, `reply.log`) that makes its pino child, the one with the
 * request id bound, only when something logs through it. Fastify makes a child for every request
 * (pino copies the logger and writes its bindings out), yet most requests only ever write their one
 * line, `request completed`, and {@link RequestLogController} writes that
 * through the parent with the request id in the line's own fields: the same bytes, in the same
 * order (a child's bindings come right after the parent's, where the line's first fields go).
 */
class RequestLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    readonly parent: FastifyBaseLogger,
    readonly bindings: Bindings,
    readonly options: ChildOptions,
  ) {
    const keys = Object.keys(bindings);
    const plain = keys.length === 1 && keys[0] === 'reqId' && options.level === undefined && options.serializers === undefined;
    this.reqId = plain ? bindings.reqId : undefined;
  }

  /**
   * The request id, when a line written through the parent with it as the first field is the
   * child's line: the bindings are the request id alone (under Fastify's default label, `reqId`),
   * and the child has no level or serializers of its own. Otherwise undefined.
   */
  readonly reqId: unknown;

  get real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options as Parameters<FastifyBaseLogger['child']>[1]));
  }

  get level(): string {
    return this.real.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  fatal(...args: unknown[]): void {
    (this.real.fatal as LogMethod)(...args);
  }

  error(...args: unknown[]): void {
    (this.real.error as LogMethod)(...args);
  }

  warn(...args: unknown[]): void {
    (this.real.warn as LogMethod)(...args);
  }

  info(...args: unknown[]): void {
    (this.real.info as LogMethod)(...args);
  }

  debug(...args: unknown[]): void {
    (this.real.debug as LogMethod)(...args);
  }

  trace(...args: unknown[]): void {
    (this.real.trace as LogMethod)(...args);
  }

  silent(...args: unknown[]): void {
    (this.real.silent as LogMethod)(...args);
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.real.child(bindings, options as Parameters<FastifyBaseLogger['child']>[1]);
  }

  isLevelEnabled(level: string): boolean {
    return (this.real as FastifyBaseLogger & { isLevelEnabled(level: string): boolean }).isLevelEnabled(level);
  }
}

/** Fastify's `childLoggerFactory`: a {@link RequestLogger} in place of a pino child made up front. */
export const requestLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  new RequestLogger(logger, bindings as Bindings, options as ChildOptions) as unknown as FastifyBaseLogger;

/**
 * One line per request, `request completed` at info, with everything about the request:
 * `{reqId, req, res, responseTime}` (`req`: method, URL, host, remote address and port; `res`: the
 * status). Fastify's default is two lines, `incoming request` on arrival and `request completed`
 * with the status; formatting and writing a line is about a tenth of the work of a small `GET`, so
 * the arrival line is written at debug level only, for whoever follows requests as they come in
 * (`--log-level debug`). A request that failed in the middle of its answer (`request errored`) is
 * one error line, with the error; one whose client closed the connection first, `request aborted`.
 *
 * While the request's own child logger is not made (see {@link RequestLogger}) the lines are written
 * through the parent with the request id as their first field, which are the bytes the child would
 * write; otherwise (a route's `logLevel` makes the child) through the child.
 */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply?: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    line(request.log, 'debug', { req: request }, 'incoming request');
    // A connection closed before the answer was complete never finishes the answer, so no
    // `request completed` would tell of the request.
    const res = reply?.raw;
    if (res) res.once('close', () => (res.writableEnded ? undefined : this.requestAborted(request, reply)));
  }

  /**
   * `request aborted` at info, `{reqId, req, responseTime}`: the client closed the connection before
   * the answer was complete (a client giving up or timing out; an event stream's subscriber leaving).
   */
  requestAborted(request: FastifyRequest, reply: FastifyReply): void {
    line(reply.log, 'info', { req: request, responseTime: reply.elapsedTime }, 'request aborted');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) return reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    line(reply.log, 'info', { req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * One of a request's own lines: through the parent with the request id as the first field while the
 * request's child is not made (the bytes the child would write), else through the child.
 */
function line(log: FastifyBaseLogger, level: 'debug' | 'info', fields: { req: FastifyRequest; res?: FastifyReply; responseTime?: number }, msg: string): void {
  const lazy = log as unknown;
  if (lazy instanceof RequestLogger && lazy.reqId !== undefined) lazy.parent[level]({ reqId: lazy.reqId, ...fields }, msg);
  else log[level](fields, msg);
}
