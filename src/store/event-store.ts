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

const INTO = 'INSERT INTO events (at, type, object_kind, object_id, scope, principal_id, context_id, state)';

/** Events that say the same kind of thing about objects of one owner (a batch map's), written as a run. */
function sameHead(a: CoreEvent, b: CoreEvent): boolean {
  return a.type === b.type && a.object.kind === b.object.kind && a.scope === b.scope && a.principalId === b.principalId && a.contextId === b.contextId;
}

export const eventCodec = {
  /** The state column: JSON text, or NULL for an object that is gone. */
  stateColumn: (state: unknown): string | null => (state === null || state === undefined ? null : JSON.stringify(state)),
  /** The columns (at, type, object_kind, object_id, scope, principal_id, context_id, state) of a new row. */
  toValues: (e: CoreEvent, state: unknown, at: string): [string, string, string, string, string, string | null, string | null, string | null] => {
    const object = e.object;
    return [at, e.type, object.kind, String(object.id), e.scope, e.principalId, e.contextId, eventCodec.stateColumn(state)];
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
  const one = new MultiInsert(db, INTO, 8);
  // A run of events with the same head: its shared columns are bound once per statement, the object
  // id and state per row (half the binding work of a batch map's thousand events).
  const run = new MultiInsert(db, INTO, 2, { row: '(@at, @type, @kind, ?, @scope, @principal, @context, ?)', named: 6 });
  const after = db.prepare(`SELECT ${COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`);
  const bounds = db.prepare('SELECT min(seq) AS oldest, max(seq) AS newest FROM events');
  const lastEver = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck();
  const prune = db.prepare('DELETE FROM events WHERE seq <= ?');
  return {
    appendEvents(events, stateOf) {
      // One change, one moment: its events share the time. They are written in order, as runs of
      // events with the same head and single rows between them.
      const at = new Date().toISOString();
      let last = 0;
      for (let i = 0; i < events.length; ) {
        const head = events[i]!;
        let j = i + 1;
        while (j < events.length && sameHead(events[j]!, head)) j++;
        if (j - i === 1) {
          last = one.run(eventCodec.toValues(head, stateOf(head), at), 1);
        } else {
          const values: unknown[] = [];
          for (let k = i; k < j; k++) values.push(String(events[k]!.object.id), eventCodec.stateColumn(stateOf(events[k]!)));
          const shared = { at, type: head.type, kind: head.object.kind, scope: head.scope, principal: head.principalId, context: head.contextId };
          last = run.run(values, j - i, shared);
        }
        i = j;
      }
      return last;
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
