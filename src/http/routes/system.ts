import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { iommuOut } from '../../schemas/topology.js';
import { VERSION } from '../../version.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';
import { SystemOutput } from '../schemas/system.js';

export const systemRoutes: FastifyPluginAsyncZod = async (app) => {
  const { store, inventory } = app.ioasd;

  app.get(
    '/system',
    { schema: { ...op('system', 'getSystem', 'Policy in force, iommu capabilities and counts'), response: { 200: SystemOutput, ...problemResponses(401) } } },
    async () => ({
      version: VERSION,
      policy: store.getPolicy() ?? 'device-first',
      iommu: iommuOut(store.getIommu()),
      counts: { ...inventory.counts(), principals: store.listPrincipals().length },
    }),
  );
};
