import type { FastifyInstance } from 'fastify';
import metricsPlugin from 'fastify-metrics';

/** Prometheus metrics at /metrics. */
export async function metrics(app: FastifyInstance): Promise<void> {
  // fastify-metrics is CommonJS with its plugin on `default`.
  await app.register(metricsPlugin.default, {
    endpoint: { url: '/metrics', schema: { hide: true }, logLevel: 'warn' } as never,
    clearRegisterOnInit: true,
    // Histograms only: Prometheus aggregates them across instances, and a summary's client-side
    // quantiles cost time on every request.
    routeMetrics: { enabled: { histogram: true, summary: false } },
  });
}
