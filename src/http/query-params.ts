import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { HttpRefusal } from './errors.js';

/**
 * Unknown query parameters are 400 EINVAL naming each (SPEC 10): a misspelt `dryrun` must never run
 * the real action. What a route knows is exactly what its `querystring` schema declares (a route
 * without one takes none), so a parameter a route gains later is accepted by declaring it there.
 * Every documented route obeys this; hidden ones (Swagger UI's files, /metrics) are not the API.
 */
export function registerQueryParamRule(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { querystring?: unknown; hide?: boolean } | undefined;
    if (schema?.hide === true) return;
    const known = declaredParams(schema?.querystring);
    if (known === null) return;
    // A callback hook (an async one costs every request a promise).
    const check: onRequestHookHandler = (request, _reply, done) => {
      const unknown = Object.keys(request.query as Record<string, unknown>).filter((k) => !known.has(k));
      if (unknown.length === 0) return done();
      const problems = unknown.map((k) => ({ path: `query.${k}`, message: 'unknown query parameter' }));
      const takes = known.size === 0 ? 'this route takes none' : `this route takes ${[...known].join(', ')}`;
      done(new HttpRefusal(400, 'EINVAL', `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: ${takes}`, problems));
    };
    // Route-level onRequest hooks run after the plugin-level ones, so authentication answers first.
    route.onRequest = [...[route.onRequest ?? []].flat(), check];
  });
}

/** The names a querystring schema declares: none without one, null when it cannot be told. */
function declaredParams(querystring: unknown): Set<string> | null {
  if (querystring === undefined) return new Set();
  if (querystring instanceof z.ZodObject) return new Set(Object.keys(querystring.shape));
  return null;
}
