import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GroupView } from '../../core/groups.js';
import { GroupIdParams, op } from '../schemas/common.js';
import { GroupOutput } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';

export function groupOut(g: GroupView): z.output<typeof GroupOutput> {
  // Ownership arrives with the policy engine; until then no group has an owner.
  return { ...g, owner: null };
}

export const groupRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory } = app.ioasd;

  app.get(
    '/groups',
    { schema: { ...op('groups', 'listGroups', 'IOMMU and virtual groups with derived viability'), response: { 200: z.array(GroupOutput), ...problemResponses(401) } } },
    async () => inventory.listGroups().map(groupOut),
  );

  app.get(
    '/groups/:id',
    {
      schema: {
        ...op('groups', 'getGroup', 'One group: devices, viable, blockers, owner'),
        params: GroupIdParams,
        response: { 200: GroupOutput, ...problemResponses(400, 401, 404) },
      },
    },
    async (request) => groupOut(inventory.getGroup(request.params.id)),
  );
};
