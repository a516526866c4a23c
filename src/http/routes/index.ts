import type { FastifyInstance } from 'fastify';
import { requireAuthentication } from '../auth.js';
import { registerRateLimit, type RateLimit } from '../plugins/rate-limit.js';
import { auditRoutes } from './audit.js';
import { contextRoutes } from './contexts.js';
import { deviceRoutes } from './devices.js';
import { eventRoutes } from './events.js';
import { groupRoutes } from './groups.js';
import { healthRoutes } from './health.js';
import { hwptRoutes } from './hwpts.js';
import { ioasRoutes } from './ioas.js';
import { principalRoutes } from './principals.js';
import { rootRoutes } from './root.js';
import { systemRoutes } from './system.js';
import { topologyRoutes } from './topology.js';
import { uiRoutes } from './ui.js';

/**
 * Every route, in a fixed order: health and the topology page outside /v1, then one plugin per
 * resource behind bearer auth and the per-principal rate limit (null: none).
 */
export async function routes(app: FastifyInstance, options: { rateLimit: RateLimit | null }): Promise<void> {
  await app.register(healthRoutes);
  await app.register(rootRoutes);
  await app.register(uiRoutes);
  await app.register(
    async (v1) => {
      requireAuthentication(v1);
      await registerRateLimit(v1, options.rateLimit);
      await v1.register(systemRoutes);
      await v1.register(principalRoutes);
      await v1.register(topologyRoutes);
      await v1.register(groupRoutes);
      await v1.register(deviceRoutes);
      await v1.register(auditRoutes);
      await v1.register(contextRoutes);
      await v1.register(ioasRoutes);
      await v1.register(hwptRoutes);
      await v1.register(eventRoutes);
    },
    { prefix: '/v1' },
  );
}
