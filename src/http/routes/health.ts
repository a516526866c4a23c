import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problem, sendProblem } from '../errors.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';

/** Liveness and readiness for orchestrators: no token needed. */
export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      schema: { ...op('health', 'getHealth', 'Liveness: the process answers'), security: [], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        ...op('health', 'getReadiness', 'Readiness: the database answers'),
        security: [],
        response: { 200: z.object({ status: z.literal('ready') }), ...problemResponses(409) },
      },
    },
    async (request, reply) => {
      try {
        app.ioasd.db.prepare('SELECT 1').get();
      } catch (err) {
        request.log.warn({ err }, 'readiness check failed');
        return sendProblem(reply, problem(request, 'EBUSY', 'the database does not answer', { status: 503 }));
      }
      return { status: 'ready' as const };
    },
  );
};
