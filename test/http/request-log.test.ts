import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RequestLogController, requestLoggerFactory } from '../../src/http/request-log.js';

/**
 * The lazy request logger (src/http/request-log.ts) writes the very lines Fastify's own child
 * loggers write: the same requests through two servers with the same one-line controller, one making
 * Fastify's child loggers and one ours, give the same log, byte for byte (responseTime aside, which
 * is measured).
 */
async function logOf(lazy: boolean, level = 'info'): Promise<string> {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      callback();
    },
  });
  const logger = pino({ level, timestamp: () => ',"time":1' }, stream) as unknown as FastifyBaseLogger;
  let n = 0;
  const app = Fastify({
    loggerInstance: logger,
    genReqId: () => `req-${++n}`,
    logController: new RequestLogController(),
    ...(lazy ? { childLoggerFactory: requestLoggerFactory } : {}),
  });
  app.get('/plain', async () => ({ ok: true }));
  app.get('/logs', async (request) => {
    request.log.info({ extra: 1 }, 'a line of its own');
    request.log.debug('not written at info');
    const child = request.log.child({ part: 'x' });
    child.warn('from a child');
    return { level: request.log.level };
  });
  app.get('/quiet', { logLevel: 'warn' }, async () => 'quiet');
  app.get('/fails', async () => {
    throw new Error('broken');
  });
  app.get('/refused', async (_request, reply) => reply.code(404).send({ nope: true }));
  await app.ready();
  for (const url of ['/plain', '/logs', '/quiet', '/fails', '/refused', '/missing', '/plain?x="quoted"']) {
    await app.inject({ url, headers: { 'user-agent': 'test' } });
  }
  await app.close();
  return text.replace(/"responseTime":[0-9.e-]+/g, '"responseTime":0');
}

describe('request logging without a child logger up front', () => {
  it('writes exactly the lines of Fastify’s own child loggers', async () => {
    for (const level of ['info', 'debug']) {
      const [theirs, ours] = [await logOf(false, level), await logOf(true, level)];
      expect(theirs.split('\n').length).toBeGreaterThan(8);
      expect(theirs).toContain('"reqId":"req-2","extra":1,"msg":"a line of its own"');
      expect(ours).toBe(theirs);
    }
  });

  it('one line a request at info, with its method, URL, status and time; the arrival too at debug', async () => {
    const lines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const info = lines(await logOf(true));
    const plain = info.filter((l) => l.reqId === 'req-1');
    expect(plain).toEqual([
      expect.objectContaining({ level: 30, msg: 'request completed', req: expect.objectContaining({ method: 'GET', url: '/plain' }), res: { statusCode: 200 }, responseTime: 0 }),
    ]);
    // A route that logs at warn writes no line for its request; a failure is one error line.
    expect(info.filter((l) => l.reqId === 'req-3')).toEqual([]);
    expect(info.filter((l) => l.reqId === 'req-4').map((l) => [l.level, l.msg])).toEqual([[50, 'broken'], [30, 'request completed']]);
    const debug = lines(await logOf(true, 'debug')).filter((l) => l.reqId === 'req-1');
    expect(debug.map((l) => [l.level, l.msg])).toEqual([[20, 'incoming request'], [30, 'request completed']]);
    expect(debug[0]!.req).toEqual(debug[1]!.req);
  });

  it('makes no child for a request that logs nothing of its own, and one when it does', () => {
    let children = 0;
    const lines: unknown[][] = [];
    const parent = {
      level: 'info',
      debug: () => {},
      info: (...args: unknown[]) => lines.push(args),
      child: () => {
        children++;
        return parent;
      },
    } as unknown as FastifyBaseLogger;
    const log = requestLoggerFactory.call(undefined as never, parent, { reqId: 'r1' }, {}, undefined as never);
    const controller = new RequestLogController();
    const request = { id: 'r1', log } as never;
    const reply = { log, elapsedTime: 1.5 } as never;
    controller.incomingRequest(request, reply);
    controller.requestCompleted(null, request, reply);
    expect(children).toBe(0);
    expect(lines).toEqual([[{ reqId: 'r1', req: request, res: reply, responseTime: 1.5 }, 'request completed']]);
    log.info('its own');
    log.info('and another');
    expect(children).toBe(1);
  });

  it('a request whose client closes the connection before the answer is one request aborted line', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...String(chunk).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
        callback();
      },
    });
    const logger = pino({ level: 'info' }, stream) as unknown as FastifyBaseLogger;
    const app = Fastify({ loggerInstance: logger, childLoggerFactory: requestLoggerFactory, logController: new RequestLogController(), genReqId: () => 'slow-1' });
    let arrived!: () => void;
    const inHandler = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    app.get('/slow', async () => {
      arrived();
      await released;
      return { late: true };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;
      const client = httpRequest({ host: '127.0.0.1', port, path: '/slow' });
      client.on('error', () => {});
      client.end();
      await inHandler;
      client.destroy();
      await new Promise<void>((resolve, reject) => {
        const started = Date.now();
        const poll = (): void => {
          if (lines.some((l) => l.msg === 'request aborted')) resolve();
          else if (Date.now() - started > 5000) reject(new Error(`no request aborted line in ${JSON.stringify(lines)}`));
          else setTimeout(poll, 10);
        };
        poll();
      });
      release();
      const mine = lines.filter((l) => l.reqId === 'slow-1');
      expect(mine[0]).toMatchObject({ level: 30, msg: 'request aborted', req: { method: 'GET', url: '/slow' } });
      expect(typeof mine[0]!.responseTime).toBe('number');
      expect(mine.filter((l) => l.msg === 'request completed')).toEqual([]);
    } finally {
      release();
      await app.close();
    }
  });
});
