import { describe, expect, it } from 'vitest';
import type { CoreEvent } from '../../src/core/events.js';
import { openDatabase } from '../../src/store/database.js';
import { eventStore } from '../../src/store/event-store.js';

const event = (type: string, id: string, principalId = 'alice'): CoreEvent => ({
  type,
  object: { kind: type.split('.')[0] as CoreEvent['object']['kind'], id },
  scope: 'owner',
  principalId,
  contextId: 'ctx-1',
  gone: type.endsWith('.removed'),
});

describe('event store', () => {
  it('appends the events of a change in order, runs with the same head and single rows alike, with consecutive seqs', () => {
    const { db } = openDatabase(':memory:');
    const store = eventStore(db);
    const events = [
      event('mapping.created', '1:0x1000'),
      event('mapping.created', '1:0x2000'),
      event('ioas.updated', '1'),
      ...Array.from({ length: 700 }, (_, i) => event('mapping.removed', `1:0x${(i + 3).toString(16)}000`)),
      event('mapping.removed', '2:0x1000', 'bob'),
    ];
    const last = store.appendEvents(events, (e) => (e.gone ? null : { id: e.object.id }));
    const rows = store.eventsAfter(0, 10_000);
    expect(last).toBe(events.length);
    expect(rows.map((r) => r.seq)).toEqual(events.map((_, i) => i + 1));
    expect(rows.map((r) => [r.type, r.objectKind, r.objectId, r.principalId, r.contextId, r.scope])).toEqual(
      events.map((e) => [e.type, e.object.kind, String(e.object.id), e.principalId, e.contextId, e.scope]),
    );
    expect(rows.map((r) => r.state)).toEqual(events.map((e) => (e.gone ? null : JSON.stringify({ id: e.object.id }))));
    expect(new Set(rows.map((r) => r.at)).size).toBe(1);
    expect(store.appendEvents([], () => null)).toBe(0);
    db.close();
  });
});
