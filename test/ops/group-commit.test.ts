import { afterEach, describe, expect, it } from 'vitest';
import { failNextSqliteCommit } from '../fail-commit.js';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

/**
 * Group commit over HTTP: the changes of one event-loop turn share one SQLite transaction and one
 * commit; no answer leaves before the commit that holds what it says; a failed commit undoes the
 * whole group (database and memory) and answers 503 EIO.
 */
let t: TestApp;
afterEach(async () => t?.close());

/** Counts commits and records which contexts the database holds right after each one. */
function watchCommits(t: TestApp) {
  const { store } = t.app.ioasd;
  const durable = new Set<string>();
  const watch = { commits: 0, durable };
  const real = store.commit.bind(store);
  store.commit = () => {
    real();
    watch.commits++;
    for (const c of store.listContexts()) durable.add(c.id);
  };
  return watch;
}

describe('group commit', () => {
  it('requests of one turn share a commit, and each answer leaves only after the commit holding it', async () => {
    t = await testApp();
    const watch = watchCommits(t);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.admin({ method: 'POST', url: '/v1/contexts', payload: { name: `c${i}` } }).then((res) => {
          // At the moment the answer arrives, what it acknowledges is already committed.
          const id = (res.json() as { id: string }).id;
          return { status: res.statusCode, id, durable: watch.durable.has(id) };
        }),
      ),
    );
    expect(answers.every((a) => a.status === 201 && a.durable)).toBe(true);
    expect(watch.commits).toBeGreaterThan(0);
    expect(watch.commits).toBeLessThan(answers.length);
  });

  it('a failed commit answers 503 EIO for the group, keeps nothing of it, and a retry then succeeds', async () => {
    t = await testApp();
    const before = (await t.admin({ url: '/v1/contexts' })).json() as { id: string }[];
    failNextSqliteCommit(t.app.ioasd.store, t.app.ioasd.db);
    const posts = Array.from({ length: 5 }, (_, i) =>
      t.admin({ method: 'POST', url: '/v1/contexts', headers: { 'idempotency-key': `k${i}` }, payload: { name: `c${i}` } }),
    );
    const read = t.admin({ url: '/v1/contexts' });
    const answers = await Promise.all(posts);
    const failed = answers.filter((r) => r.statusCode === 503);
    expect(failed.length).toBeGreaterThan(0);
    for (const res of answers) expect([201, 503]).toContain(res.statusCode);
    for (const res of failed) {
      const p = expectProblem(res, 503, 'EIO');
      expect(p.detail).toMatch(/could not be made durable.*nothing of it was kept/);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['x-request-id']).toBeDefined();
    }
    // A read answered from the undone state is refused as well, or shows only what was kept.
    const listed = await read;
    expect([200, 503]).toContain(listed.statusCode);

    // Only what was acknowledged exists, in memory and in the database, and memory equals the database.
    const kept = answers.filter((r) => r.statusCode === 201).map((r) => (r.json() as { id: string }).id);
    const now = ((await t.admin({ url: '/v1/contexts' })).json() as { id: string }[]).map((c) => c.id).sort();
    expect(now).toEqual([...before.map((c) => c.id), ...kept].sort());
    expect(t.app.ioasd.store.listContexts().map((c) => c.id).sort()).toEqual(now);
    const check = await t.admin({ url: '/v1/system/check' });
    expect(check.statusCode).toBe(200);
    expect((check.json() as { ok: boolean }).ok).toBe(true);
    // No event of the undone changes was kept, so none can ever be streamed.
    const created = t.app.ioasd.store.eventsAfter(0, 1000).filter((e) => e.type === 'context.created');
    expect(created.map((e) => e.objectId).sort()).toEqual(kept.sort());

    // The failed requests' idempotency records went with them: a retry makes the change afresh.
    const i = answers.findIndex((r) => r.statusCode === 503);
    const retry = await t.admin({ method: 'POST', url: '/v1/contexts', headers: { 'idempotency-key': `k${i}` }, payload: { name: `c${i}` } });
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
  });
});
