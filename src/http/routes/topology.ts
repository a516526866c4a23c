import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { fail } from '../../core/errors.js';
import { effectsOf } from '../../core/events.js';
import { fromDocument, TopologyInput, TopologyOutput, topologyOut } from '../../schemas/topology.js';
import { actor, adminOnly } from '../auth.js';
import { op } from '../schemas/common.js';
import { TopologyQuery } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';
import { RescanReply } from '../schemas/rescan.js';
import { DryRunQuery, DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { z } from 'zod';

/** Export and import of the whole inventory, and the rescan of a real host (admin). */
export const topologyRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, rescan, hostScan } = app.ioasd;

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
      const parsed = fromDocument(request.body, inventory.iommu());
      return mutate(request, reply, () => ({ status: 200, body: topologyOut(inventory.import({ ...parsed, mode: request.query.mode }, actor(request))) }));
    },
  );

  app.post(
    '/topology/rescan',
    {
      preHandler: adminOnly,
      schema: {
        ...op(
          'topology',
          'rescanTopology',
          'Re-read the sysfs tree given at start and apply it: new devices appear, vanished ones go (EBUSY while owned), outside driver changes are taken over (admin; ?dryRun=true answers without changing anything)',
        ),
        // Strict: a misspelt ?dryrun=true must not run the real rescan.
        querystring: DryRunQuery.strict(),
        headers: IdempotencyHeaders,
        response: { 200: RescanReply, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        if (!hostScan) fail('EOPNOTSUPP', 'ioasd was started without --sysfs: there is no host to rescan (import a document with PUT /v1/topology instead)');
        const { topology } = fromDocument(hostScan(), inventory.iommu());
        // The effects are those a dry run lists: derived from the events the rescan made.
        return { status: 200, body: { dryRun: false, effects: effectsOf(rescan.apply(topology, actor(request))) } };
      }),
  );
};
