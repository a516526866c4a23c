import type { FastifyPluginAsync } from 'fastify';

/** `GET /` sends a browser to the topology page; not part of the API, so not in the OpenAPI document. */
export const rootRoutes: FastifyPluginAsync = async (app) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui', 302));
};
