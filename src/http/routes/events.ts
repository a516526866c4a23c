import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Caller } from '../../core/caller.js';
import type { StoredEvent } from '../../core/ports.js';
import { caller } from '../auth.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';

const Seq = z.string().regex(/^(0|[1-9]\d{0,15})$/, 'a decimal event sequence number');

const EventsQuery = z.object({
  after: Seq.optional().meta({ description: 'resume after this event (as Last-Event-ID does); 0: from the oldest kept' }),
});

const NUMERIC_KINDS = new Set(['ioas', 'hwpt', 'group']);
const BATCH = 256;

/**
 * What a viewer may see of an event, as the `data:` of its SSE message, or null. Admins see all;
 * a user sees its own objects' events and every inventory event, with another principal's owner
 * shown as "other".
 */
export function deliverable(row: StoredEvent, viewer: Caller): object | null {
  const mine = row.principalId === viewer.id;
  if (viewer.role !== 'admin' && (row.scope === 'admin' || (row.scope === 'owner' && !mine))) return null;
  let state: unknown = row.state === null ? null : JSON.parse(row.state);
  if (viewer.role !== 'admin' && row.scope === 'inventory' && !mine && state !== null && typeof state === 'object' && 'owner' in state && state.owner !== null) {
    state = { ...state, owner: 'other' };
  }
  const id = NUMERIC_KINDS.has(row.objectKind) ? Number(row.objectId) : row.objectId;
  return { seq: row.seq, type: row.type, at: row.at, object: { kind: row.objectKind, id }, state };
}

/** GET /v1/events: every committed change as server-sent events, resumable across restarts (SPEC 10). */
export const eventRoutes: FastifyPluginAsyncZod = async (app) => {
  const { store, tx } = app.ioasd;
  // Events of a group whose commit is still to come are not read (group commit, core/tx.ts).
  const committedAfter = (seq: number, limit: number) => store.eventsAfter(seq, limit).filter((row) => row.seq < tx.uncommittedFrom);
  const hub = app.eventHub;

  // HEAD answers the headers a GET would and ends: the GET's stream never ends, and a HEAD, which
  // sends no body, would otherwise hold its connection (and a subscriber) open without a byte.
  app.head(
    '/events',
    { schema: { querystring: EventsQuery } },
    async (_request, reply) => reply.code(200).header('content-type', 'text/event-stream').header('cache-control', 'no-cache').send(),
  );

  app.get(
    '/events',
    {
      sse: { kind: 'only', heartbeat: false },
      schema: {
        ...op('events', 'streamEvents', 'Server-sent events of every committed change; resume with Last-Event-ID or ?after='),
        querystring: EventsQuery,
        response: { 200: z.string().meta({ description: 'text/event-stream: `id: <seq>`, `event: <object>.<verb>`, `data: {seq, type, at, object, state}`; `event: reset` when resuming before the oldest kept event' }), ...problemResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const viewer = caller(request);
      const lastEventId = request.headers['last-event-id'];
      const resume = request.query.after ?? (typeof lastEventId === 'string' && Seq.safeParse(lastEventId).success ? lastEventId : undefined);
      // Without a position the stream starts with what happens next.
      let cursor = resume === undefined ? Math.min(store.eventBounds().newest, tx.uncommittedFrom - 1) : Number(resume);
      reply.sse.keepAlive();
      let running = false;
      let again = false;
      let closed = false;
      const pump = async (): Promise<void> => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            for (;;) {
              const { oldest } = store.eventBounds();
              // Events between the cursor and the oldest kept one are gone: the client must re-list.
              if (cursor < oldest - 1) {
                await reply.sse.send({ event: 'reset', data: { after: cursor, oldest } });
                cursor = oldest - 1;
              }
              const rows = committedAfter(cursor, BATCH);
              if (rows.length === 0) break;
              for (const row of rows) {
                cursor = row.seq;
                const data = deliverable(row, viewer);
                // send() waits for the socket to drain: a slow reader pauses here, reading nothing more.
                if (data) await reply.sse.send({ id: String(row.seq), event: row.type, data });
                if (closed) return;
              }
            }
          } while (again && !closed);
        } finally {
          running = false;
        }
      };
      const wake = (): void => {
        pump().catch((err: unknown) => request.log.warn({ err }, 'event stream ended'));
      };
      const leave = hub.add({ reply, wake, position: () => cursor });
      reply.sse.onClose(() => {
        closed = true;
        leave();
      });
      reply.sse.sendHeaders();
      // The position the stream starts from, as an id without data (EventSource keeps it as its last
      // event id): a client dropped before any event resumes from here instead of missing the gap.
      reply.raw.write(`: connected\nid: ${cursor}\n\n`);
      await pump();
    },
  );
};
