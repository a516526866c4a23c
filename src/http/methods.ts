import type { FastifyInstance } from 'fastify';
import FindMyWay from 'find-my-way';
import { problem, sendProblem } from './errors.js';

type Method = FindMyWay.HTTPMethod;

/**
 * What a request that matches no route gets (RFC 9110 15.5.6): a path that exists with other
 * methods is 405 with an `Allow` header listing them, and OPTIONS on it is 204 with the same
 * header; any other path is 404 ENOENT. The methods come from the registered routes themselves
 * (HEAD with every GET, as Fastify adds it), matched by find-my-way, Fastify's own router, so a
 * path means here exactly what it means to Fastify.
 */
export function registerMethodRouting(app: FastifyInstance, maxParamLength: number): void {
  const routes = new Set<string>();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.add(`${method} ${route.url}`);
  });
  // Built on the first unmatched request: most servers (and tests) never pay for it.
  let router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1> | undefined;
  const methods = new Set<Method>();
  const routerOf = () => {
    if (router) return router;
    router = FindMyWay({ maxParamLength });
    for (const key of routes) {
      const [method, url] = key.split(' ') as [Method, string];
      methods.add(method);
      router.on(method, url, () => undefined);
    }
    return router;
  };

  /** The methods a concrete path has, in a fixed order, OPTIONS included when there is any. */
  const allowedOn = (path: string): string[] => {
    const router = routerOf();
    const allowed: string[] = [];
    for (const m of methods) if (router.find(m, path) !== null) allowed.push(m);
    if (allowed.length === 0) return allowed;
    if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.push('HEAD');
    if (!allowed.includes('OPTIONS')) allowed.push('OPTIONS');
    return allowed.sort();
  };

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = allowedOn(path);
    if (allowed.length === 0) return sendProblem(reply, problem(request, 'ENOENT', `no route ${request.method} ${path}`));
    reply.header('allow', allowed.join(', '));
    if (request.method === 'OPTIONS') return reply.code(204).send();
    return sendProblem(
      reply,
      problem(request, 'EOPNOTSUPP', `${request.method} is not a method of ${path}; it has ${allowed.join(', ')}`, { status: 405 }),
    );
  });
}
