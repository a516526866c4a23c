import { describe, expect, it } from 'vitest';
import { DEFAULT_QUOTAS } from '../../src/core/principals.js';
import { coreFixture, errnoOf, type CoreFixture, type StoreKind } from './fixture.js';

/**
 * A batch map is one pass of multi-row statements (chunks of 512, 256, ... rows) for its mappings and
 * one for its events: all of it lands, in order, or nothing does. On SQLite and on the in-memory fake.
 */
const rw = { read: true, write: true };
const range = (i: number) => ({ iova: BigInt(0x100000 + i * 0x2000), length: 0x1000n, userAddress: BigInt(0x7f0000000000 + i * 0x1000), ...rw });

function setup(kind: StoreKind): { f: CoreFixture; ioas: number; seq: () => number } {
  const f = coreFixture('device-first', ':memory:', undefined, kind);
  const ctx = f.core.contexts.create(f.alice, {});
  const ioas = f.core.ioas.create(f.alice, ctx.id).id;
  return { f, ioas, seq: () => f.store.eventBounds().newest };
}

/** What the store holds for an ioas, through the start-up path: a fresh core over the same store. */
function stored(f: CoreFixture, ioas: number): string[] {
  return [...f.restart().ioas.get(f.alice, ioas).mappings.from()].map((m) => `${m.iova}+${m.length}@${m.userAddress}`);
}

describe.each(['sqlite', 'memory'] as const)('batch map (%s store)', (kind) => {
  it('writes 1,300 ranges across chunk sizes: every row, one event each in order, one audit row', () => {
    const { f, ioas, seq } = setup(kind);
    const before = seq();
    const audit = f.store.listAudit({ limit: 1_000_000 }).length;
    const batch = Array.from({ length: 1300 }, (_, i) => range(i));
    // The HTTP layer renders states as GET shows objects; here, the event's own id and detail.
    f.core.tx.renderStateWith((e) => ({ id: e.object.id, length: `0x${(e.detail!.length as bigint).toString(16)}` }));
    const made = f.core.mappings.mapBatch(f.alice, ioas, batch);
    expect(made.map((m) => m.iova)).toEqual(batch.map((b) => b.iova));
    expect(stored(f, ioas)).toEqual(batch.map((b) => `${b.iova}+${b.length}@${b.userAddress}`));
    const events = f.store.eventsAfter(before, 10_000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 1300 }, (_, i) => before + 1 + i));
    expect(events.every((e) => e.type === 'mapping.created')).toBe(true);
    expect(events.map((e) => e.objectId)).toEqual(batch.map((b) => `${ioas}:0x${b.iova.toString(16)}`));
    expect(events.map((e) => JSON.parse(e.state!) as unknown)).toEqual(events.map((e) => ({ id: e.objectId, length: '0x1000' })));
    expect(f.store.listAudit({ limit: 1_000_000 }).slice(audit).map((a) => a.action)).toEqual(['ioas.map-batch']);
    expect(f.core.quotas.usageFor('alice')).toMatchObject({ mappings: 1300, pinnedBytes: 1300n * 0x1000n });
    expect(f.check()).toMatchObject({ ok: true, violations: [] });
  });

  it('refused at entry 1,100 (it overlaps entry 3) leaves nothing: no row, no event, no audit row, no charge', () => {
    const { f, ioas, seq } = setup(kind);
    f.core.mappings.map(f.alice, ioas, { ...range(5000) });
    const before = seq();
    const audit = f.store.listAudit({ limit: 1_000_000 }).length;
    const batch = Array.from({ length: 1200 }, (_, i) => range(i));
    batch[1100] = { ...range(3), length: 0x800n };
    expect(() => f.core.mappings.mapBatch(f.alice, ioas, batch)).toThrow(/^mappings\[1100\]: range .* overlaps an existing mapping/);
    expect(errnoOf(() => f.core.mappings.mapBatch(f.alice, ioas, batch))).toBe('EEXIST');
    expect(f.core.ioas.get(f.alice, ioas).mappings.size).toBe(1);
    expect(f.core.quotas.usageFor('alice')).toMatchObject({ mappings: 1, pinnedBytes: 0x1000n });
    expect(seq()).toBe(before);
    expect(f.store.listAudit({ limit: 1_000_000 })).toHaveLength(audit);
    expect(stored(f, ioas)).toEqual([`${range(5000).iova}+4096@${range(5000).userAddress}`]);
    expect(f.check()).toMatchObject({ ok: true, violations: [] });
  });

  it('refused on the mapping quota midway leaves nothing either', () => {
    const { f, ioas, seq } = setup(kind);
    f.quotas.set('alice', { ...DEFAULT_QUOTAS, maxMappings: 700 });
    const before = seq();
    const batch = Array.from({ length: 1000 }, (_, i) => range(i));
    expect(() => f.core.mappings.mapBatch(f.alice, ioas, batch)).toThrow(/^mappings\[700\]: maxMappings quota of 700 reached/);
    expect(f.core.quotas.usageFor('alice')).toMatchObject({ mappings: 0, pinnedBytes: 0n });
    expect(seq()).toBe(before);
    expect(stored(f, ioas)).toEqual([]);
    // The same 700 fit.
    expect(f.core.mappings.mapBatch(f.alice, ioas, batch.slice(0, 700))).toHaveLength(700);
    expect(stored(f, ioas)).toHaveLength(700);
  });
});
