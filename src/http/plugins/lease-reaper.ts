import type { FastifyInstance } from 'fastify';

/**
 * Releases contexts whose lease ran out, at least once every `intervalMs` (and once at start-up, in
 * bootstrap), so a server that was down while a lease ran out releases it as soon as it is back.
 * 0 turns the timer off (tests drive the clock themselves).
 */
export function leaseReaper(app: FastifyInstance, intervalMs: number): void {
  if (intervalMs <= 0) return;
  const timer = setInterval(() => {
    try {
      const released = app.ioasd.contexts.reapExpired();
      if (released.length > 0) app.log.info({ contexts: released }, 'leases expired: contexts released');
    } catch (err) {
      app.log.error({ err }, 'lease check failed');
    }
  }, intervalMs);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
