import fastifySseModule, { type fastifySSE } from '@fastify/sse';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { IDEMPOTENCY_LIFETIME_MS } from '../mutation.js';

export interface EventOptions {
  /** Events kept for resuming (default 100,000); older ones go, and a client resuming before them gets `reset`. */
  retention?: number;
  /** How often a `: keep-alive` comment goes to every subscriber (default 15 s). */
  keepAliveMs?: number;
  /** How often old events and expired idempotency records are removed (default 60 s). */
  sweepMs?: number;
}

/** One subscriber of GET /v1/events: woken after each commit, it reads the log itself. */
export interface Subscriber {
  reply: FastifyReply;
  wake(): void;
  /** The last seq this subscriber has read from the log (delivered or filtered out). */
  position(): number;
}

/**
 * The live side of the event log. Subscribers are woken after every commit that wrote events and read
 * the new rows themselves, at their own pace: a slow reader pauses (it waits for its socket to drain
 * before reading more), so the server never buffers more than one batch per subscriber. Idle
 * subscribers cost one set entry; one timer sends every keep-alive. The log is kept within its
 * retention, and Idempotency-Key records expire after 24 h, by the same sweep.
 */
export class EventHub {
  readonly subscribers = new Set<Subscriber>();
  constructor(readonly retention: number) {}

  add(s: Subscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    eventHub: EventHub;
  }
}


export async function events(app: FastifyInstance, options: EventOptions = {}): Promise<void> {
  const hub = new EventHub(options.retention ?? 100_000);
  app.decorate('eventHub', hub);
  // @fastify/sse frames the stream (id/event/data lines), parses Last-Event-ID and waits for the
  // socket to drain; its own per-connection heartbeat is off in favour of one shared timer.
  // The CommonJS export is the plugin wrapped with fastify-plugin (so reply.sse reaches every route);
  // its named exports are the unwrapped function.
  await app.register(fastifySseModule as unknown as typeof fastifySSE, { heartbeatInterval: 0 });
  const { tx, store } = app.ioasd;
  const stop = tx.onCommit(() => {
    for (const s of hub.subscribers) s.wake();
  });
  const keepAlive = setInterval(() => {
    for (const s of hub.subscribers) if (!s.reply.raw.writableNeedDrain) s.reply.raw.write(': keep-alive\n\n');
  }, options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const sweep = (): void => {
    try {
      store.pruneEvents(hub.retention);
      store.expireIdempotency(Date.now() - IDEMPOTENCY_LIFETIME_MS);
    } catch (err) {
      app.log.error({ err }, 'event and idempotency sweep failed');
    }
  };
  sweep();
  const sweeper = setInterval(sweep, options.sweepMs ?? 60_000);
  sweeper.unref();
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const s of hub.subscribers) s.reply.raw.end();
    hub.subscribers.clear();
  });
  app.addHook('onClose', async () => {
    stop();
    clearInterval(keepAlive);
    clearInterval(sweeper);
  });
}
