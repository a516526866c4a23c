import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { iommuOut } from '../../schemas/topology.js';
import { VERSION } from '../../version.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';
import { SystemOutput } from '../schemas/system.js';
import { PolicyBody, PolicyReply } from '../schemas/ownership.js';
import { adminOnly, caller } from '../auth.js';

export const systemRoutes: FastifyPluginAsyncZod = async (app) => {
  const { store, inventory, engine } = app.ioasd;

  app.get(
    '/system',
    { schema: { ...op('system', 'getSystem', 'Policy in force, iommu capabilities, counts and a summary of isolation warnings'), response: { 200: SystemOutput, ...problemResponses(401) } } },
    async () => ({
      version: VERSION,
      policy: engine.policy,
      iommu: iommuOut(store.getIommu()),
      counts: { ...inventory.counts(), principals: store.listPrincipals().length },
      warnings: inventory.warningSummary(),
    }),
  );

  app.put(
    '/system/policy',
    {
      preHandler: adminOnly,
      schema: {
        ...op('system', 'setPolicy', 'Switch the ownership policy (admin); EBUSY with blockers while any group is open or device bound'),
        body: PolicyBody,
        response: { 200: PolicyReply, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request) => engine.setPolicy(caller(request), request.body.policy, request.body.dryRun),
  );
};
