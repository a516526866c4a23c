import type { FastifyError, FastifyHttpOptions, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { problem, sendProblem } from './errors.js';
import { titleOf, type WireErrno } from './errno-status.js';
import { registerJsonBody } from './json-body.js';
import { registerMethodRouting } from './methods.js';
import { registerQueryParamRule } from './query-params.js';

/**
 * HTTP hygiene (SPEC 10): every answer that is not 2xx is problem+json, including the HTTP parser's
 * own; limits on URL, path parameter, body size and JSON depth; timeouts against slow clients.
 */
export interface HttpLimits {
  /** Longest URL (path and query): 414 beyond. */
  maxUrlLength: number;
  /** Longest path parameter, decoded: 414 beyond (the longest id, a device's, is 128). */
  maxParamLength: number;
  /** Largest request body in bytes: 413 beyond. */
  bodyLimit: number;
  /** Deepest JSON nesting of a body: 400 EINVAL beyond. */
  maxJsonDepth: number;
  /** Time from connection to the end of the request headers: 408 after it (slowloris). */
  headersTimeoutMs: number;
  /** Time from connection to the end of the whole request, body included: 408 after it. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
  /** How often Node looks for connections past those timeouts. */
  timeoutCheckMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxUrlLength: 4096,
  maxParamLength: 128,
  bodyLimit: 1024 * 1024,
  maxJsonDepth: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  timeoutCheckMs: 1000,
};

/** Fastify server options carrying the limits, and the handlers of errors met before any route. */
export function serverOptions(limits: HttpLimits) {
  return {
    bodyLimit: limits.bodyLimit,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.timeoutCheckMs },
    // The router lets percent-encoded ids through (a ':' is 3 characters encoded); the decoded
    // length is checked against maxParamLength in registerHygiene.
    routerOptions: { maxParamLength: limits.maxParamLength * 3 },
    clientErrorHandler: clientErrorHandler(limits.maxUrlLength),
    frameworkErrors,
  } satisfies FastifyHttpOptions<Server>;
}

/** Registers the parts of the hygiene that are hooks and handlers; call before any route. */
export function registerHygiene(app: FastifyInstance, limits: HttpLimits): void {
  registerJsonBody(app, limits.maxJsonDepth);
  registerMethodRouting(app, limits.maxParamLength * 3);
  registerQueryParamRule(app);
  // A callback hook (an async one costs every request a promise): an answer sent here ends the
  // request without `done`.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url.length > limits.maxUrlLength) {
      sendProblem(reply, problem(request, 'EINVAL', `the URL is longer than ${limits.maxUrlLength} characters`, { status: 414 }));
      return;
    }
    const params = (request.params ?? {}) as Record<string, unknown>;
    for (const name in params) {
      const value = params[name];
      if (typeof value === 'string' && value.length > limits.maxParamLength) {
        const message = `longer than ${limits.maxParamLength} characters`;
        sendProblem(reply, problem(request, 'EINVAL', `path parameter ${name} is ${message}`, { status: 414, problems: [{ path: `params.${name}`, message }] }));
        return;
      }
    }
    done();
  });
}

/** Errors Fastify's router meets before a route is chosen: a bad percent-encoding, an over-long parameter. */
function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendProblem(reply, problem(request, 'EINVAL', 'a path parameter is too long', { status: 414 }));
  } else if (error.code === 'FST_ERR_BAD_URL') {
    void sendProblem(reply, problem(request, 'EINVAL', 'the URL is not valid percent-encoded UTF-8'));
  } else {
    void sendProblem(reply, problem(request, 'EINVAL', error.message, { status: error.statusCode ?? 400 }));
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts a refusal answered outside any route (set by http/plugins/metrics.ts). */
    countRawRefusal?: (errno: WireErrno) => void;
  }
}

/**
 * Errors of Node's HTTP parser and its timeouts, met before Fastify sees a request: answered on the
 * raw socket as problem+json, then the connection is closed (its framing can no longer be trusted).
 */
function clientErrorHandler(maxUrlLength: number) {
  return function (this: FastifyInstance, err: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
    answerClientError(this, err, socket, maxUrlLength);
  };
}

function answerClientError(app: FastifyInstance, err: Error & { code?: string; rawPacket?: unknown }, socket: Socket, maxUrlLength: number): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, errno, detail] = clientErrorAnswer(err, maxUrlLength);
  app.countRawRefusal?.(errno);
  app.log.debug({ err: { code: err.code, message: err.message } }, 'client error');
  // A response already under way (a handler answering while the body timed out) cannot be replaced.
  const busy = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (!socket.writable || busy) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ type: `urn:ioasd:errno:${errno}`, title: titleOf(errno), status, detail, errno });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function clientErrorAnswer(err: Error & { code?: string; rawPacket?: unknown }, maxUrlLength: number): [number, WireErrno, string] {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'ETIMEDOUT', 'the request did not arrive in time'];
    case 'HPE_HEADER_OVERFLOW':
      // When the request line alone is past the URL limit, the URL is what is too long.
      return requestLineLonger(err.rawPacket, maxUrlLength)
        ? [414, 'EINVAL', `the URL is longer than ${maxUrlLength} characters`]
        : [431, 'EINVAL', 'the request headers are too large'];
    default:
      return [400, 'EINVAL', `malformed HTTP request (${err.code ?? err.message})`];
  }
}

/** Whether the packet starts a request whose request line (ended or not) is longer than `limit`. */
function requestLineLonger(packet: unknown, limit: number): boolean {
  if (!Buffer.isBuffer(packet) || !/^[A-Z-]+ /.test(packet.subarray(0, 16).toString('latin1'))) return false;
  const end = packet.indexOf('\r\n');
  return (end < 0 ? packet.length : end) > limit;
}
