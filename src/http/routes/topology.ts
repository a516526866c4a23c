import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { fromDocument, TopologyInput, TopologyOutput, topologyOut } from '../../schemas/topology.js';
import { actor, adminOnly } from '../auth.js';
import { op } from '../schemas/common.js';
import { TopologyQuery } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';
import { DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { z } from 'zod';

/** Export and import of the whole inventory (admin). */
export const topologyRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, store } = app.ioasd;

  app.get(
    '/topology',
    {
      preHandler: adminOnly,
      schema: { ...op('topology', 'getTopology', 'Export the inventory as a topology document (admin)'), response: { 200: TopologyOutput, ...problemResponses(401, 403) } },
    },
    async () => topologyOut(inventory.topology()),
  );

  app.put(
    '/topology',
    {
      preHandler: adminOnly,
      schema: {
        ...op('topology', 'putTopology', 'Import a topology document, all or nothing: replace (default) or ?mode=merge (admin)'),
        querystring: TopologyQuery,
        body: TopologyInput,
        headers: IdempotencyHeaders,
        response: { 200: z.union([TopologyOutput, DryRunReply]), ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const parsed = fromDocument(request.body, store.getIommu());
      return mutate(request, reply, () => ({ status: 200, body: topologyOut(inventory.import({ ...parsed, mode: request.query.mode }, actor(request))) }));
    },
  );
};
