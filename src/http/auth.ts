import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../core/caller.js';
import type { Principal } from '../core/model.js';
import { problem, sendProblem } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set on every /v1 request that got past authentication. */
    principal: Principal;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Adds bearer authentication to every route of the plugin context it is called in. */
export function requireAuthentication(app: FastifyInstance): void {
  app.decorateRequest('principal', null as unknown as Principal);
  // A callback hook (an async one costs every request a promise): a refusal sent here ends the
  // request without `done`.
  app.addHook('onRequest', (request, reply, done) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    const principal = match ? app.ioasd.principals.authenticate(match[1]!) : undefined;
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="ioasd"');
      sendProblem(reply, problem(request, 'EACCES', match ? 'the bearer token is not valid' : 'a bearer token is required', { status: 401 }));
      return;
    }
    request.principal = principal;
    done();
  });
}

/** preHandler for admin routes: a user gets 403 EACCES. */
export async function adminOnly(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.principal.role !== 'admin') {
    await sendProblem(reply, problem(request, 'EACCES', `${request.routeOptions.url ?? 'this route'} is for admins`));
  }
}

/** The caller as the core sees it: who, and whether an admin. */
export function caller(request: FastifyRequest): Caller {
  return { id: request.principal.id, role: request.principal.role };
}

/** The actor recorded in the audit trail. */
export function actor(request: FastifyRequest): string {
  return request.principal.id;
}
