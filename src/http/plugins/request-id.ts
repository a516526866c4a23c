import { randomUUID } from 'node:crypto';
import type { FastifyInstance, RawRequestDefaultExpression } from 'fastify';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A caller's x-request-id is kept when it is sane, so its logs and ours line up; otherwise a new UUID. */
export function requestId(req: RawRequestDefaultExpression): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Every answer carries the request id (a callback hook: an async one costs every answer a promise). */
export function echoRequestId(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
}
