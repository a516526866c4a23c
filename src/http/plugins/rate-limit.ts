import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { HttpRefusal } from '../errors.js';

/** At most `max` requests per principal in each window of `windowMs` (a fixed window). */
export interface RateLimit {
  max: number;
  windowMs: number;
}

/** 6000 a minute (100/s on average) per principal: far above what an orchestrator needs, far below what one client can send. */
export const DEFAULT_RATE_LIMIT: RateLimit = { max: 6000, windowMs: 60_000 };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Reads `MAX/WINDOW` (`6000/1m`, `50/10s`, `100/500ms`; the window's number defaults to 1, so
 * `100/s` works too), or `off` (or `0`) for no limit. Returns null for off, undefined when malformed.
 */
export function parseRateLimit(text: string): RateLimit | null | undefined {
  if (text === 'off' || text === '0') return null;
  const m = /^([1-9][0-9]{0,8})\/([1-9][0-9]{0,6})?(ms|s|m|h)$/.exec(text);
  if (!m) return undefined;
  return { max: Number(m[1]), windowMs: Number(m[2] ?? 1) * UNITS[m[3]!]! };
}

export function formatRateLimit(limit: RateLimit | null): string {
  if (limit === null) return 'off';
  const unit = (['h', 'm', 's'] as const).find((u) => limit.windowMs % UNITS[u]! === 0) ?? 'ms';
  return `${limit.max}/${limit.windowMs / UNITS[unit]!}${unit}`;
}

/**
 * Per-principal rate limits for the routes of `v1` registered after this call (@fastify/rate-limit,
 * one counter per principal in memory). Call after authentication is added: the limit is keyed by
 * the authenticated principal, so it runs after that hook and unauthenticated requests never count.
 * Past the limit: 429 problem+json, errno EAGAIN, with `Retry-After` in seconds.
 */
export async function registerRateLimit(v1: FastifyInstance, limit: RateLimit | null): Promise<void> {
  if (limit === null) return;
  await v1.register(rateLimit, {
    max: limit.max,
    timeWindow: limit.windowMs,
    hook: 'onRequest',
    keyGenerator: (request) => `principal:${request.principal.id}`,
    errorResponseBuilder: (request, context) =>
      new HttpRefusal(
        429,
        'EAGAIN',
        `principal ${request.principal.id} sent more than ${context.max} requests in ${formatRateLimit(limit).split('/')[1]}; retry in ${context.after}`,
      ),
  });
}
