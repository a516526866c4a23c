import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import metricsPlugin from 'fastify-metrics';
import {
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pino, type DestinationStream, type LoggerOptions } from 'pino';
import { Allocator } from './core/allocator.js';
import { Inventory } from './core/inventory.js';
import type { PolicyName } from './core/model.js';
import { DEFAULT_QUOTAS, Principals } from './core/principals.js';
import { PolicyEngine } from './core/policy/engine.js';
import { requireAuthentication } from './http/auth.js';
import { registerErrorHandling } from './http/errors.js';
import { DEFAULT_HTTP_LIMITS, registerHygiene, serverOptions, type HttpLimits } from './http/hygiene.js';
import { registerDomainMetrics } from './http/metrics.js';
import { openApiTransform, openApiTransformObject } from './http/openapi.js';
import { registerRateLimit, type RateLimit } from './http/plugins/rate-limit.js';
import { auditRoutes } from './http/routes/audit.js';
import { contextRoutes } from './http/routes/contexts.js';
import { ioasRoutes } from './http/routes/ioas.js';
import { deviceRoutes } from './http/routes/devices.js';
import { groupRoutes } from './http/routes/groups.js';
import { healthRoutes } from './http/routes/health.js';
import { hwptRoutes } from './http/routes/hwpts.js';
import { principalRoutes } from './http/routes/principals.js';
import { systemRoutes } from './http/routes/system.js';
import { topologyRoutes } from './http/routes/topology.js';
import type { Topology } from './core/model.js';
import { fromDocument, topologyOut, type TopologyDocument } from './schemas/topology.js';
import { MEMORY, openDatabase, type Db } from './store/database.js';
import { nodeSecrets } from './store/secrets.js';
import { SqliteStore } from './store/sqlite-store.js';
import { demoTopology } from './topology/demo.js';
import { VERSION } from './version.js';

export interface AppOptions {
  /** SQLite file, or ":memory:" (tests). */
  db: string;
  /** Policy for a new database, or an explicit choice at start. */
  policy?: PolicyName;
  /** Inventory to load at start (from --topology or --sysfs); without it a new database gets the demo. */
  topology?: TopologyDocument;
  /** Fixed admin token (IOASD_ADMIN_TOKEN); otherwise one is generated on first start. */
  adminToken?: string;
  /** A pino logger (see {@link createLogger}); without one the app logs nothing (tests). */
  logger?: FastifyBaseLogger;
  /** IOASIDs are allocated from this range (default 1..2^31-1). */
  ioasidRange?: { min: number; max: number };
  /** Epoch milliseconds; tests pass a fake clock to run leases out. */
  now?: () => number;
  /** How often expired leases are looked for (default every second; 0 turns the timer off for tests). */
  leaseCheckMs?: number;
  /** HTTP limits and timeouts (see http/hygiene.ts); tests shorten the timeouts. */
  http?: Partial<HttpLimits>;
  /** Per-principal rate limit (--rate-limit); absent or null: none. */
  rateLimit?: RateLimit | null;
}

export interface Services {
  db: Db;
  store: SqliteStore;
  inventory: Inventory;
  principals: Principals;
  allocator: Allocator;
  engine: PolicyEngine;
  /** Where the generated admin token was written on this start, if it was. */
  adminTokenFile: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    ioasd: Services;
  }
}

export type App = FastifyInstance;

/** JSON lines on stdout; the Authorization header and any token field are never written. */
export function createLogger(level: string, destination?: DestinationStream): FastifyBaseLogger {
  const options: LoggerOptions = {
    level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Builds the whole service without listening: tests call `inject`, main.ts calls `listen`.
 * Opening the database takes the single-server lock; closing the app releases it.
 */
export async function buildApp(options: AppOptions): Promise<App> {
  const services = bootstrap(options);
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.http };
  const app = Fastify({
    ...serverOptions(limits),
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // A caller's x-request-id is kept when it is sane, so its logs and ours line up.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  }).withTypeProvider<ZodTypeProvider>();

  app.decorate('ioasd', services);
  // Leases are checked at least once a second, and once at start-up (in bootstrap), so a server that
  // was down while a lease ran out releases it as soon as it is back.
  const leaseCheckMs = options.leaseCheckMs ?? 1000;
  const reaper = leaseCheckMs > 0 ? setInterval(() => reapLeases(app), leaseCheckMs) : undefined;
  reaper?.unref();
  app.addHook('onClose', async () => {
    clearInterval(reaper);
    services.db.close();
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  if (services.adminTokenFile) app.log.info({ file: services.adminTokenFile }, 'admin token written (mode 0600)');

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerHygiene(app, limits);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ioasd',
        version: VERSION,
        description: 'Control plane for IOMMU groups, I/O address spaces and DMA ownership (VFIO group-first and iommufd device-first).',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: openApiTransform,
    transformObject: openApiTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  // fastify-metrics is CommonJS with its plugin on `default`.
  await app.register(metricsPlugin.default, {
    endpoint: { url: '/metrics', schema: { hide: true }, logLevel: 'warn' } as never,
    clearRegisterOnInit: true,
    // Histograms only: Prometheus aggregates them across instances, and a summary's client-side
    // quantiles cost time on every request.
    routeMetrics: { enabled: { histogram: true, summary: false } },
  });
  registerDomainMetrics(app);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes);
  await app.register(
    async (v1) => {
      requireAuthentication(v1);
      await registerRateLimit(v1, options.rateLimit ?? null);
      await v1.register(systemRoutes);
      await v1.register(principalRoutes);
      await v1.register(topologyRoutes);
      await v1.register(groupRoutes);
      await v1.register(deviceRoutes);
      await v1.register(auditRoutes);
      await v1.register(contextRoutes);
      await v1.register(ioasRoutes);
      await v1.register(hwptRoutes);
    },
    { prefix: '/v1' },
  );
  return app;
}

function sameTopology(a: Topology, b: Topology): boolean {
  const norm = (t: Topology) => {
    const out = topologyOut(t);
    return JSON.stringify({ ...out, groups: out.groups.map((g) => ({ ...g, devices: [...g.devices].sort() })).sort((x, y) => x.id - y.id), devices: [...out.devices].sort((x, y) => x.id.localeCompare(y.id)) });
  };
  return norm(a) === norm(b);
}

function reapLeases(app: App): void {
  try {
    const released = app.ioasd.allocator.reapExpired();
    if (released.length > 0) app.log.info({ contexts: released }, 'leases expired: contexts released');
  } catch (err) {
    app.log.error({ err }, 'lease check failed');
  }
}

/** Opens the database and brings inventory, policy and the admin principal to a usable state. */
function bootstrap(options: AppOptions): Services {
  const { db } = openDatabase(options.db);
  try {
    const store = new SqliteStore(db);
    const inventory = new Inventory(store);
    const allocator = new Allocator({
      store,
      ioasidRange: options.ioasidRange ?? { min: 1, max: 2 ** 31 - 1 },
      now: options.now ?? Date.now,
      newId: nodeSecrets.newId,
      policy: () => store.getPolicy() ?? 'device-first',
      quotasOf: (id) => store.getPrincipal(id)?.quotas ?? DEFAULT_QUOTAS,
    });
    const engine = new PolicyEngine(store, allocator);
    inventory.guardWith(engine.state);
    const principals = new Principals(store, nodeSecrets, (id) => allocator.releasePrincipal(id));
    if (options.topology) {
      // A document without iommu keeps the current capabilities, or on a new database the demo's
      // (a typical x86 IOMMU: 4K/2M/1G pages, 48-bit aperture, the MSI window reserved).
      const iommu = store.hasTopology() ? store.getIommu() : fromDocument(demoTopology()).topology.iommu;
      const incoming = fromDocument(options.topology, iommu);
      // Reloading the same inventory is a no-op, so a restart with owned devices is not refused.
      const unchanged = store.hasTopology() && sameTopology(inventory.topology(), incoming.topology);
      if (!unchanged) inventory.import({ ...incoming, mode: 'replace' }, null);
    } else if (!store.hasTopology()) {
      inventory.import({ ...fromDocument(demoTopology()), mode: 'replace' }, null);
    }
    // An explicit --policy applies like PUT /system/policy (refused while anything is held); without
    // one, the policy in force survives the restart.
    if (!store.getPolicy()) store.setPolicy(options.policy ?? 'device-first');
    else if (options.policy) engine.setPolicy(null, options.policy);

    const admin = principals.ensureBootstrapAdmin(options.adminToken, new Date().toISOString());
    let adminTokenFile: string | null = null;
    if (admin.token !== undefined && options.db !== MEMORY) {
      adminTokenFile = join(dirname(options.db), 'admin.token');
      writeFileSync(adminTokenFile, admin.token + '\n', { mode: 0o600 });
      chmodSync(adminTokenFile, 0o600); // the mode above is ignored when the file already existed
    }
    allocator.reapExpired();
    return { db, store, inventory, principals, allocator, engine, adminTokenFile };
  } catch (err) {
    db.close();
    throw err;
  }
}
