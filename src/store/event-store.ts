import type { CoreEvent } from '../core/events.js';
import type { EventLogPort, EventPort, StoredEvent } from '../core/ports.js';
import type { Db } from './database.js';
import { MultiInsert } from './multi-insert.js';

/** Codec of the `events` table: the state is JSON text (u64 values already hex strings), ids are text. */
interface EventRow {
  seq: number;
  at: string;
  type: string;
  object_kind: string;
  object_id: string;
  scope: CoreEvent['scope'];
  principal_id: string | null;
  context_id: string | null;
  state: string | null;
}

const EVENT_COLUMNS = 8;

export const eventCodec = {
  /** The columns (at, type, object_kind, object_id, scope, principal_id, context_id, state) of a new row. */
  toValues: (e: CoreEvent, state: unknown, at: string): [string, string, string, string, string, string | null, string | null, string | null] => {
    const object = e.object;
    return [at, e.type, object.kind, String(object.id), e.scope, e.principalId, e.contextId, state === null || state === undefined ? null : JSON.stringify(state)];
  },
  fromRow: (r: EventRow): StoredEvent => ({
    seq: r.seq,
    at: r.at,
    type: r.type,
    objectKind: r.object_kind,
    objectId: r.object_id,
    scope: r.scope,
    principalId: r.principal_id,
    contextId: r.context_id,
    state: r.state,
  }),
};

const COLUMNS = 'seq, at, type, object_kind, object_id, scope, principal_id, context_id, state';

/** {@link EventPort} and {@link EventLogPort} on the `events` table. */
export function eventStore(db: Db): EventPort & EventLogPort {
  const insert = new MultiInsert(db, 'INSERT INTO events (at, type, object_kind, object_id, scope, principal_id, context_id, state)', EVENT_COLUMNS);
  const after = db.prepare(`SELECT ${COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`);
  const bounds = db.prepare('SELECT min(seq) AS oldest, max(seq) AS newest FROM events');
  const lastEver = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck();
  const prune = db.prepare('DELETE FROM events WHERE seq <= ?');
  return {
    appendEvents(events, stateOf) {
      // One change, one moment: its events share the time.
      const at = new Date().toISOString();
      const values: unknown[] = [];
      for (const e of events) values.push(...eventCodec.toValues(e, stateOf(e), at));
      return insert.run(values, events.length);
    },
    eventsAfter: (seq, limit) => (after.all(seq, limit) as EventRow[]).map(eventCodec.fromRow),
    eventBounds() {
      const b = bounds.get() as { oldest: number | null; newest: number | null };
      if (b.newest !== null) return { oldest: b.oldest!, newest: b.newest };
      const last = (lastEver.get() as number | undefined) ?? 0;
      return { oldest: last + 1, newest: last };
    },
    pruneEvents(keep) {
      const b = bounds.get() as { oldest: number | null; newest: number | null };
      if (b.newest === null || b.newest - b.oldest! + 1 <= keep) return 0;
      return prune.run(b.newest - keep).changes;
    },
  };
}
