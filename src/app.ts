import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { bootstrap, type BootstrapOptions, type Services } from './bootstrap.js';
import { registerErrorHandling } from './http/errors.js';
import { eventStateRenderer } from './http/event-state.js';
import { DEFAULT_HTTP_LIMITS, registerHygiene, serverOptions, type HttpLimits } from './http/hygiene.js';
import { events, type EventOptions } from './http/plugins/events.js';
import { groupCommit } from './http/plugins/group-commit.js';
import { leaseReaper } from './http/plugins/lease-reaper.js';
import { metrics } from './http/plugins/metrics.js';
import { openapiPlugin } from './http/plugins/openapi.js';
import type { RateLimit } from './http/plugins/rate-limit.js';
import { echoRequestId, requestId } from './http/plugins/request-id.js';
import { RequestLogController, requestLoggerFactory } from './http/request-log.js';
import { routes } from './http/routes/index.js';
import { responseSerializerCompiler } from './http/serializer.js';
import { closeDatabase } from './store/database.js';

export interface AppOptions extends BootstrapOptions {
  /** A pino logger (see logger.ts); without one the app logs nothing (tests). */
  logger?: FastifyBaseLogger;
  /** How often expired leases are looked for (default every second; 0 turns the timer off for tests). */
  leaseCheckMs?: number;
  /** Event log retention, keep-alive and sweep intervals. */
  events?: EventOptions;
  /** HTTP limits and timeouts (see http/hygiene.ts); tests shorten the timeouts. */
  http?: Partial<HttpLimits>;
  /** Per-principal rate limit (--rate-limit); absent or null: none. */
  rateLimit?: RateLimit | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    ioasd: Services;
  }
}

export type App = FastifyInstance;

/**
 * Builds the whole service without listening: tests call `inject`, main.ts calls `listen`.
 * Opening the database takes the single-server lock; closing the app releases it.
 * Order: services, infrastructure plugins (errors, HTTP hygiene, OpenAPI, metrics, request ids, group commit, events,
 * lease reaper), routes.
 */
export async function buildApp(options: AppOptions): Promise<App> {
  const services = bootstrap(options);
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.http };
  const app = Fastify({
    ...serverOptions(limits),
    // With a logger, a request's pino child is made only when something but its one access line logs (http/request-log.ts).
    ...(options.logger ? { loggerInstance: options.logger, childLoggerFactory: requestLoggerFactory, logController: new RequestLogController() } : { logger: false }),
    genReqId: requestId,
  }).withTypeProvider<ZodTypeProvider>();

  app.decorate('ioasd', services);
  app.addHook('onClose', async () => {
    // What the last turn changed is committed before the database closes.
    services.tx.groupCommits(null);
    const t0 = performance.now();
    const { packed, error } = closeDatabase(services.db);
    if (packed > 0) app.log.info({ mappings: packed, ms: Math.round(performance.now() - t0) }, 'mapping rows packed for the next start');
    if (error !== undefined) app.log.warn({ err: error }, 'mapping rows not packed: the next start reads them one by one');
  });
  if (services.adminTokenFile) app.log.info({ file: services.adminTokenFile }, 'admin token written (mode 0600)');

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);
  registerErrorHandling(app);
  registerHygiene(app, limits);
  await openapiPlugin(app);
  await metrics(app);
  echoRequestId(app);
  groupCommit(app);
  services.tx.renderStateWith(eventStateRenderer(services));
  await events(app, options.events);
  leaseReaper(app, options.leaseCheckMs ?? 1000);
  await routes(app, { rateLimit: options.rateLimit ?? null });
  return app;
}
