import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { snapshot } from '../../src/core/check.js';
import type { Caller } from '../../src/core/caller.js';
import type { Core } from '../../src/core/core.js';
import { IoasdError } from '../../src/core/errors.js';
import { CommitFailed } from '../../src/core/tx.js';
import { coreFixture, failNextCommit, P, type StoreKind } from './fixture.js';

/**
 * Group commit (core/tx.ts) under any history: groups of changes of every kind, with refusals and
 * dry runs among them, and any of the commits failing. After every group, memory equals the store
 * (the self-check, and a core rebuilt from the store: a restart), and a group whose commit failed
 * left exactly the state before it, so nothing is kept that was not acknowledged.
 */
type Who = 'alice' | 'bob';
type Change =
  | { op: 'context'; who: Who }
  | { op: 'deleteContext'; who: Who; pick: number }
  | { op: 'ioas'; who: Who; pick: number }
  | { op: 'destroyIoas'; who: Who; pick: number }
  | { op: 'map'; who: Who; pick: number; page?: number; pages: number; write: boolean }
  | { op: 'batch'; who: Who; pick: number; pages: number[] }
  | { op: 'unmap'; who: Who; pick: number; page: number; pages: number }
  | { op: 'copy'; who: Who; pick: number; from: number; page: number; pages: number; write: boolean };
type Step = { change: Change; dryRun: boolean };
type Group = { steps: Step[]; commitFails: boolean };

const who = fc.constantFrom<Who>('alice', 'bob');
const pick = fc.nat();
const page = fc.integer({ min: 0, max: 31 });
const pages = fc.integer({ min: 1, max: 3 });
const change: fc.Arbitrary<Change> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ op: fc.constant('context' as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteContext' as const), who, pick }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ioas' as const), who, pick }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('destroyIoas' as const), who, pick }) },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant('map' as const), who, pick, page: fc.option(page, { nil: undefined }), pages, write: fc.boolean() }, { requiredKeys: ['op', 'who', 'pick', 'pages', 'write'] }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('batch' as const), who, pick, pages: fc.array(pages, { minLength: 1, maxLength: 4 }) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('unmap' as const), who, pick, page, pages: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('copy' as const), who, pick, from: pick, page, pages, write: fc.boolean() }) },
);
const group: fc.Arbitrary<Group> = fc.record({
  steps: fc.array(fc.record({ change, dryRun: fc.integer({ min: 0, max: 4 }).map((n) => n === 0) }), { minLength: 1, maxLength: 6 }),
  commitFails: fc.boolean(),
});

const at = (p: number): bigint => BigInt(p + 1) * P;

/** Applies one change by its principal on its own objects (picked round the ones there are); refusals are part of the history. */
function apply(core: Core, callers: Record<Who, Caller>, c: Change): string {
  const caller = callers[c.who];
  const contexts = [...core.objects.all('context').values()].filter((x) => x.principalId === caller.id);
  const spaces = [...core.objects.all('ioas').values()].filter((x) => x.principalId === caller.id);
  const nth = <T>(xs: T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);
  try {
    switch (c.op) {
      case 'context':
        core.contexts.create(caller, {});
        break;
      case 'deleteContext': {
        const ctx = nth(contexts, c.pick);
        if (!ctx) return 'none';
        core.contexts.delete(caller, ctx.id);
        break;
      }
      case 'ioas': {
        const ctx = nth(contexts, c.pick);
        if (!ctx) return 'none';
        core.ioas.create(caller, ctx.id);
        break;
      }
      case 'destroyIoas': {
        const space = nth(spaces, c.pick);
        if (!space) return 'none';
        core.ioas.destroy(caller, space.id);
        break;
      }
      case 'map': {
        const space = nth(spaces, c.pick);
        if (!space) return 'none';
        core.mappings.map(caller, space.id, { iova: c.page === undefined ? undefined : at(c.page), length: BigInt(c.pages) * P, userAddress: P, read: true, write: c.write });
        break;
      }
      case 'batch': {
        const space = nth(spaces, c.pick);
        if (!space) return 'none';
        core.mappings.mapBatch(
          caller,
          space.id,
          c.pages.map((n) => ({ length: BigInt(n) * P, userAddress: 2n * P, read: true, write: true })),
        );
        break;
      }
      case 'unmap': {
        // From the start of a mapping: all of it, part of it (refused), or on over the next ones.
        const space = nth(spaces, c.pick);
        const from = space && nth([...space.mappings.from()], c.page);
        if (!space || !from) return 'none';
        core.mappings.unmap(caller, space.id, { iova: from.iova, length: BigInt(c.pages) * P });
        break;
      }
      case 'copy': {
        const dst = nth(spaces, c.pick);
        const src = nth(spaces, c.from);
        const from = src && nth([...src.mappings.from()], c.page);
        if (!dst || !src || !from) return 'none';
        const length = BigInt(c.pages) * P < from.length ? BigInt(c.pages) * P : from.length;
        core.mappings.copy(caller, dst.id, { srcIoasId: src.id, srcIova: from.iova, length, read: true, write: c.write });
        break;
      }
    }
    return 'ok';
  } catch (e) {
    if (e instanceof IoasdError) return e.errno;
    throw e;
  }
}

/** Everything memory holds that the store must equal: the objects with their mappings, and each principal's charges. */
function state(core: Core): string {
  const usage = ['alice', 'bob'].map((id) => core.quotas.usageFor(id));
  return JSON.stringify({ objects: [...snapshot(core).entries()], usage }, (_, x: unknown) => (typeof x === 'bigint' ? x.toString(16) : x));
}


describe.each<StoreKind>(['sqlite', 'memory'])('group commit under any history (%s store, property)', (kind) => {
  it('memory always equals the store, and a group whose commit failed leaves nothing behind', async () => {
    // How the groups went: both outcomes, and refusals inside groups, must be seen.
    const seen = { committed: 0, failed: 0, refusedInGroup: 0, dryRunsInGroup: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(group, { minLength: 1, maxLength: 8 }), async (groups) => {
        const f = coreFixture('device-first', ':memory:', undefined, kind);
        const callers = { alice: f.alice, bob: f.bob };
        // Committed before the groups: a context with two address spaces for each principal.
        for (const caller of [f.alice, f.bob]) {
          const ctx = f.core.contexts.create(caller, {});
          f.core.ioas.create(caller, ctx.id);
          f.core.ioas.create(caller, ctx.id);
        }
        f.core.tx.groupCommits(() => undefined);
        for (const g of groups) {
          const before = state(f.core);
          for (const s of g.steps) {
            const outcome = s.dryRun ? dryRun(f.core, callers, s.change) : apply(f.core, callers, s.change);
            if (outcome !== 'ok' && outcome !== 'none') seen.refusedInGroup++;
            if (s.dryRun) seen.dryRunsInGroup++;
          }
          const pending = f.core.tx.pending;
          if (!pending) {
            // Nothing was changed (all refused, dry or empty): nothing to commit.
            expect(state(f.core)).toBe(before);
            continue;
          }
          if (g.commitFails) failNextCommit(f);
          f.core.tx.flush();
          const failed = await pending.durable.then(
            () => false,
            (e: unknown) => {
              expect(e).toBeInstanceOf(CommitFailed);
              return true;
            },
          );
          expect(failed).toBe(g.commitFails);
          seen[failed ? 'failed' : 'committed']++;
          if (failed) expect(state(f.core)).toBe(before);
          expect(f.check().violations).toEqual([]);
          // A core rebuilt from the store (a restart) has what memory has.
          const now = state(f.core);
          f.restart();
          f.core.tx.groupCommits(() => undefined);
          expect(state(f.core)).toBe(now);
        }
      }),
      {
        numRuns: 60,
        // Always run too: a committed group with a refusal (an overlapping map) and a dry run in it,
        // then a failed one, so every outcome counted below is seen whatever the random runs do.
        examples: [
          [
            [
              {
                steps: [
                  { change: { op: 'map', who: 'alice', pick: 0, page: 0, pages: 2, write: true }, dryRun: false },
                  { change: { op: 'map', who: 'alice', pick: 0, page: 1, pages: 1, write: true }, dryRun: false },
                  { change: { op: 'unmap', who: 'alice', pick: 0, page: 0, pages: 2 }, dryRun: true },
                ],
                commitFails: false,
              },
              { steps: [{ change: { op: 'copy', who: 'alice', pick: 1, from: 0, page: 0, pages: 1, write: true }, dryRun: false }], commitFails: true },
            ],
          ],
        ],
      },
    );
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(0);
  });
});

/** A change previewed: it runs, its effects are kept for the answer, and it is rolled back inside the group. */
function dryRun(core: Core, callers: Record<Who, Caller>, c: Change): string {
  return core.tx.dryRun(() => apply(core, callers, c)).result;
}
