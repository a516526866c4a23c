import { describe, expect, it } from 'vitest';
import { CommitFailed } from '../../src/core/tx.js';
import { snapshot } from '../../src/core/check.js';
import { coreFixture, errnoOf, failNextCommit, P, type CoreFixture, type StoreKind } from './fixture.js';

/** Group commit (core/tx.ts): the changes of one turn share one transaction and one commit. */
const rw = { read: true, write: true };

/** The mappings the store holds for one ioas, by iova. */
function storedIovas(f: CoreFixture, ioasId: number): bigint[] {
  const iovas: bigint[] = [];
  f.store.eachMapping((id, iova) => {
    if (id === ioasId) iovas.push(iova);
  });
  return iovas;
}

/** Group commit on, with the flush in the test's hands instead of setImmediate's. */
function grouped(kind: StoreKind) {
  const f = coreFixture('device-first', ':memory:', undefined, kind);
  let scheduled = 0;
  f.core.tx.groupCommits(() => void scheduled++);
  const commits = { count: 0 };
  const store = f.store as { commit(): void };
  const real = store.commit.bind(store);
  store.commit = () => {
    commits.count++;
    real();
  };
  return { f, commits, scheduled: () => scheduled };
}


describe.each<StoreKind>(['sqlite', 'memory'])('group commit (%s store)', (kind) => {
  it('the changes of one turn share one commit; their result is durable only when it returns', async () => {
    const { f, commits, scheduled } = grouped(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    for (let i = 1n; i <= 5n; i++) f.core.mappings.map(f.alice, ioas.id, { iova: i * P, length: P, userAddress: 0n, ...rw });
    expect(scheduled()).toBe(1);
    const group = f.core.tx.pending!;
    expect(group).not.toBeNull();
    expect(commits.count).toBe(0);
    let notified = 0;
    f.core.tx.onCommit((lastSeq) => (notified = lastSeq));
    f.core.tx.flush();
    await expect(group.durable).resolves.toBeUndefined();
    expect(commits.count).toBe(1);
    expect(notified).toBe(group.lastSeq);
    expect(f.core.tx.pending).toBeNull();
    expect(f.check().violations).toEqual([]);
    expect(storedIovas(f, ioas.id)).toHaveLength(5);
  });

  it('a refused change in a group undoes only its own writes and memory', () => {
    const { f } = grouped(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.map(f.alice, ioas.id, { iova: P, length: P, userAddress: 0n, ...rw });
    const before = snapshot(f.core);
    // A batch whose second range overlaps the first mapping: all or nothing, inside the group.
    const refused = errnoOf(() =>
      f.core.mappings.mapBatch(f.alice, ioas.id, [
        { iova: 4n * P, length: P, userAddress: 0n, ...rw },
        { iova: P, length: P, userAddress: 0n, ...rw },
      ]),
    );
    expect(refused).toBe('EEXIST');
    expect(snapshot(f.core)).toEqual(before);
    f.core.mappings.map(f.alice, ioas.id, { iova: 2n * P, length: P, userAddress: 0n, ...rw });
    f.core.tx.flush();
    expect(f.check().violations).toEqual([]);
    expect(storedIovas(f, ioas.id)).toEqual([P, 2n * P]);
  });

  it('a failed commit undoes every change of the group in memory and the store, and says so', async () => {
    const { f } = grouped(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    f.core.tx.flush();
    const before = snapshot(f.core);
    const ids = f.store.listContexts().map((c) => c.id);
    // A group of several changes of several kinds.
    f.core.mappings.map(f.alice, ioas.id, { iova: P, length: P, userAddress: 0n, ...rw });
    const other = f.core.contexts.create(f.bob, {});
    f.core.ioas.create(f.bob, other.id);
    f.core.contexts.delete(f.alice, ctx.id);
    const group = f.core.tx.pending!;
    failNextCommit(f);
    f.core.tx.flush();
    const err = await group.durable.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommitFailed);
    expect(snapshot(f.core)).toEqual(before);
    expect(f.store.listContexts().map((c) => c.id)).toEqual(ids);
    expect(storedIovas(f, ioas.id)).toEqual([]);
    expect(f.check().violations).toEqual([]);
    // The next group works as if nothing happened.
    f.core.mappings.map(f.alice, ioas.id, { iova: P, length: P, userAddress: 0n, ...rw });
    f.core.tx.flush();
    expect(storedIovas(f, ioas.id)).toHaveLength(1);
    expect(f.check().violations).toEqual([]);
  });

  it('a dry run inside a group rolls back to its own savepoint', () => {
    const { f } = grouped(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    const before = snapshot(f.core);
    const { events } = f.core.tx.dryRun(() => f.core.ioas.destroy(f.alice, ioas.id));
    expect(events.map((e) => e.type)).toContain('ioas.deleted');
    expect(snapshot(f.core)).toEqual(before);
    f.core.tx.flush();
    expect(f.store.listIoas().map((r) => r.id)).toEqual([ioas.id]);
    expect(f.check().violations).toEqual([]);
  });

  it('turning group commit off commits what is open', () => {
    const { f, commits } = grouped(kind);
    f.core.contexts.create(f.alice, {});
    f.core.tx.groupCommits(null);
    expect(commits.count).toBe(1);
    expect(f.core.tx.pending).toBeNull();
    // Without group commit, a change commits by itself.
    f.core.contexts.create(f.alice, {});
    expect(f.core.tx.pending).toBeNull();
    expect(f.store.listContexts()).toHaveLength(2);
  });
});
