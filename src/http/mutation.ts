import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IoasdError } from '../core/errors.js';
import { effectsOf } from '../core/events.js';
import { hex } from '../core/u64.js';
import { caller } from './auth.js';
import { statusOf } from './errno-status.js';
import { problem, sendProblem } from './errors.js';
import { QueryBool } from './schemas/common.js';

/** How long an Idempotency-Key's first answer is kept (SPEC 10: 24 h after first use). */
export const IDEMPOTENCY_LIFETIME_MS = 24 * 3600 * 1000;

/** u64 values (bigint) in JSON as the wire writes them. */
const bigintAsHex = (_: string, v: unknown): unknown => (typeof v === 'bigint' ? hex(v) : v);

/** What a mutation answers: a status and a body already in wire form (none for 204). */
export interface Answer {
  status: number;
  body?: unknown;
}

/** `?dryRun=true` on the routes that take it (SPEC 10). */
export const DryRunQuery = z.object({ dryRun: QueryBool.optional().meta({ description: 'answer what the call would do, changing nothing' }) });

/** The answer of a dry run that would succeed: every consequence, nothing changed. */
export const DryRunReply = z
  .object({
    dryRun: z.literal(true),
    effects: z.array(z.looseObject({ kind: z.string() })).meta({ description: 'every consequence: group-claimed, group-released, driver-changed, device-removed, hwpt-created, hwpt-destroyed, mappings-dropped, context-released, ...' }),
  })
  .meta({ id: 'DryRunReply' });

/** The Idempotency-Key request header (IETF draft-ietf-httpapi-idempotency-key-header). */
export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x20-\x7e]{1,255}$/, '1 to 255 printable ASCII characters')
    .optional()
    .meta({ description: 'a retry with the same key, method, path and body gets the first answer back and changes nothing (24 h)' }),
});

const JSON_TYPE = 'application/json; charset=utf-8';
/** A body that is already JSON text. */
const asIs = (text: unknown): string => text as string;

export const TOKEN_NOT_KEPT = '(shown once, never stored: rotate the token to get a new one)';

/** u64 values (bigint) inside effects travel as hex strings, as everywhere on the wire. */
function wire(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, bigintAsHex));
}

/**
 * Runs every mutation under /v1 the same way (SPEC 10):
 * - `Idempotency-Key`: a retry by the same principal with the same key, method, path and body gets
 *   the stored first answer (header `Idempotent-Replayed: true`) and changes nothing; the same key
 *   with another request is 422 EINVAL. The answer is stored in the change's own transaction (a
 *   refusal, which changed nothing, in a transaction of its own).
 * - `?dryRun=true`: the real change, rolled back (database and memory): the same refusal, or 200
 *   `{dryRun: true, effects}` derived from the events the change would have committed.
 * `run` calls the core and shapes the answer; it must be synchronous (one transaction spans it).
 */
export function mutate(
  request: FastifyRequest,
  reply: FastifyReply,
  run: () => Answer,
  options: { dryRun?: boolean; dryRunAnswer?: (body: unknown) => Record<string, unknown> } = {},
): FastifyReply {
  const { tx, store } = request.server.ioasd;
  const dryRun = options.dryRun === true || (request.query as { dryRun?: boolean } | undefined)?.dryRun === true;
  const key = request.headers['idempotency-key'];
  const principalId = caller(request).id;
  let digest = '';
  if (typeof key === 'string') {
    digest = createHash('sha256')
      .update(`${request.method}\n${request.url}\n${JSON.stringify(request.body ?? null, bigintAsHex)}`)
      .digest('hex'); // over the parsed body: the same values written differently (0x1000, 4096) are the same request
    const first = store.getIdempotency(principalId, key);
    if (first && first.createdAt > Date.now() - IDEMPOTENCY_LIFETIME_MS) {
      if (first.digest !== digest) {
        return sendProblem(reply, problem(request, 'EINVAL', `Idempotency-Key ${JSON.stringify(key)} was used with a different request`, { status: 422 }));
      }
      reply.header('idempotent-replayed', 'true').code(first.status);
      if (first.body === null) return reply.send();
      const isProblem = first.status >= 400;
      return reply.type(isProblem ? 'application/problem+json' : JSON_TYPE).serializer(asIs).send(first.body);
    }
  }
  /** Stores the first answer: `text` as sent, or a problem document (a refusal). */
  const remember = (status: number, text: string | null): void => {
    if (typeof key !== 'string' || dryRun) return;
    // A stale record of the same key (past its 24 h) gives way to the new first answer.
    store.putIdempotency({ principalId, key, digest, status, body: text, createdAt: Date.now() });
  };
  try {
    if (dryRun) {
      const { result, events } = tx.dryRun(run);
      return reply.code(200).send({ ...options.dryRunAnswer?.(result.body), dryRun: true, effects: wire(effectsOf(events)) });
    }
    // The answer is written once, by the route's serializer, and that text is both sent and kept:
    // a replay is the first answer byte for byte.
    const answer = tx.run(() => {
      const a = run();
      reply.code(a.status);
      const body = a.body;
      const text = body === undefined ? null : (reply.serialize(body) as string);
      if (typeof key === 'string') {
        // A bearer token is shown once and never stored: a replay of the answer that carried it says so instead.
        const secret = body !== null && typeof body === 'object' && 'token' in body;
        remember(a.status, secret ? (reply.serialize({ ...body, token: TOKEN_NOT_KEPT }) as string) : text);
      }
      return text;
    });
    return answer === null ? reply.send() : reply.type(JSON_TYPE).serializer(asIs).send(answer);
  } catch (err) {
    if (err instanceof IoasdError && typeof key === 'string' && !dryRun) {
      const p = problem(request, err.errno, err.message, { blockers: err.blockers, problems: err.problems });
      tx.run(() => remember(statusOf(err.errno), JSON.stringify(p)));
      return sendProblem(reply, p);
    }
    throw err;
  }
}
