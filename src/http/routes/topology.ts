import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { fail } from '../../core/errors.js';
import { fromDocument, TopologyInput, TopologyOutput, topologyOut } from '../../schemas/topology.js';
import { actor, adminOnly } from '../auth.js';
import { op } from '../schemas/common.js';
import { DryRunQuery, TopologyQuery } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';
import { RescanReply } from '../schemas/rescan.js';

/** Export and import of the whole inventory, and the rescan of a real host (admin). */
export const topologyRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, store, hostScan } = app.ioasd;

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
        response: { 200: TopologyOutput, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request) => {
      const parsed = fromDocument(request.body, store.getIommu());
      return topologyOut(inventory.import({ ...parsed, mode: request.query.mode }, actor(request)));
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
        querystring: DryRunQuery,
        response: { 200: RescanReply, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      if (!hostScan) fail('EOPNOTSUPP', 'ioasd was started without --sysfs: there is no host to rescan (import a document with PUT /v1/topology instead)');
      const { topology } = fromDocument(hostScan(), store.getIommu());
      const dryRun = request.query.dryRun;
      return { dryRun, effects: inventory.rescan(topology, actor(request), dryRun) };
    },
  );
};
