import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IoasidAllocator } from '../../src/core/ioasid.js';
import type { CoreObject } from '../../src/core/model.js';
import { coreFixture, errnoOf, P, U64_MAX, type CoreFixture } from './fixture.js';

const rw = { read: true, write: true };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fileFixture(): { path: string; f: CoreFixture } {
  const dir = mkdtempSync(join(tmpdir(), 'ioasd-core-'));
  dirs.push(dir);
  const path = join(dir, 'ioasd.db');
  return { path, f: coreFixture('device-first', path) };
}
const count = (f: CoreFixture, table: string) => f.db!.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
/** Pinned pages still referenced by some mapping. */
const pagesLeft = (f: CoreFixture) => f.db!.prepare('SELECT count(DISTINCT pages_id) FROM mappings').pluck().get() as number;

describe('IOASIDs', () => {
  it('are allocated lowest-free from the range, never 0, and reused after free', () => {
    const ids = new IoasidAllocator(1, 5);
    expect([ids.allocate(), ids.allocate(), ids.allocate()]).toEqual([1, 2, 3]);
    ids.free(2);
    expect(ids.allocate()).toBe(2);
    expect([ids.allocate(), ids.allocate()]).toEqual([4, 5]);
    expect(errnoOf(() => ids.allocate())).toBe('ENOSPC');
    ids.free(3);
    ids.free(1);
    expect(ids.allocate()).toBe(1);
    expect(() => new IoasidAllocator(0, 5)).toThrow();
  });

  it('start from the used ids after a restart, filling gaps first', () => {
    const ids = new IoasidAllocator(10, 2 ** 31 - 1, [10, 11, 13, 2 ** 30]);
    expect([ids.allocate(), ids.allocate(), ids.allocate()]).toEqual([12, 14, 15]);
  });

  it('a configured range is honoured by ioas creation, ENOSPC past it', () => {
    const f = coreFixture('device-first', ':memory:', { min: 100, max: 101 });
    const ctx = f.core.contexts.create(f.alice, {});
    expect([f.core.ioas.create(f.alice, ctx.id).id, f.core.ioas.create(f.alice, ctx.id).id]).toEqual([100, 101]);
    expect(errnoOf(() => f.core.ioas.create(f.alice, ctx.id))).toBe('ENOSPC');
    f.core.ioas.destroy(f.alice, 100);
    expect(f.core.ioas.create(f.alice, ctx.id).id).toBe(100);
  });
});

describe('contexts and address spaces', () => {
  it('belong to their principal: another principal gets ENOENT as if they did not exist', () => {
    const f = coreFixture();
    const ctx = f.core.contexts.create(f.alice, { name: 'vm' });
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    expect(errnoOf(() => f.core.contexts.get(f.bob, ctx.id))).toBe('ENOENT');
    expect(errnoOf(() => f.core.ioas.create(f.bob, ctx.id))).toBe('ENOENT');
    expect(errnoOf(() => f.core.ioas.get(f.bob, ioas.id))).toBe('ENOENT');
    expect(errnoOf(() => f.core.ioas.destroy(f.bob, ioas.id))).toBe('ENOENT');
    expect(f.core.contexts.list(f.bob)).toEqual([]);
    expect(f.core.contexts.list({ id: 'root', role: 'admin' }).map((c) => c.id)).toEqual([ctx.id]);
  });

  it('an ioas with mappings can be destroyed; one in use is EBUSY naming its users', () => {
    const f = coreFixture();
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.map(f.alice, ioas.id, { iova: P, length: P, userAddress: 0n, ...rw });
    // Something holding the ioas, as a hwpt on it would: a typed reference in the object table.
    const holder: CoreObject = { type: 'hwpt', id: 7, contextId: ctx.id, principalId: 'alice', users: new Set() };
    f.core.objects.use(holder, ioas);
    const busy = (() => {
      try {
        f.core.ioas.destroy(f.alice, ioas.id);
      } catch (e) {
        return e as { errno: string; blockers: unknown[] };
      }
    })();
    expect(busy?.errno).toBe('EBUSY');
    expect(busy?.blockers).toEqual([{ kind: 'hwpt', id: '7', reason: `uses ioas ${ioas.id}`, owner: ctx.id }]);
    f.core.objects.unuse(holder, ioas);
    f.core.ioas.destroy(f.alice, ioas.id);
    expect(count(f, 'mappings')).toBe(0);
    expect(pagesLeft(f)).toBe(0);
    expect(f.core.quotas.usageFor('alice')).toEqual({ ioas: 0, mappings: 0, pinnedBytes: 0n });
  });

  it('deleting a context frees everything it holds in one go', () => {
    const f = coreFixture();
    const ctx = f.core.contexts.create(f.alice, {});
    const keep = f.core.contexts.create(f.alice, {});
    for (let i = 0; i < 3; i++) {
      const ioas = f.core.ioas.create(f.alice, ctx.id);
      f.core.mappings.mapBatch(f.alice, ioas.id, [1n, 2n, 3n].map((k) => ({ iova: k * P, length: P, userAddress: 0n, ...rw })));
    }
    const kept = f.core.ioas.create(f.alice, keep.id);
    f.core.mappings.map(f.alice, kept.id, { iova: P, length: P, userAddress: 0n, ...rw });
    f.core.contexts.delete(f.alice, ctx.id);
    expect(count(f, 'ioas')).toBe(1);
    expect(count(f, 'mappings')).toBe(1);
    expect(count(f, 'contexts')).toBe(1);
    expect(f.core.quotas.usageFor('alice')).toEqual({ ioas: 1, mappings: 1, pinnedBytes: P });
    expect(errnoOf(() => f.core.contexts.get(f.alice, ctx.id))).toBe('ENOENT');
  });

  it('a lease that runs out releases the context like a delete; renew extends it', () => {
    const f = coreFixture();
    const leased = f.core.contexts.create(f.alice, { leaseSeconds: 10 });
    const ioas = f.core.ioas.create(f.alice, leased.id);
    f.core.mappings.map(f.alice, ioas.id, { iova: P, length: P, userAddress: 0n, ...rw });
    f.clock.now += 8_000;
    expect(f.core.contexts.reapExpired()).toEqual([]);
    f.core.contexts.renew(f.alice, leased.id);
    f.clock.now += 8_000;
    expect(f.core.contexts.reapExpired()).toEqual([]);
    f.clock.now += 2_001;
    expect(f.core.contexts.reapExpired()).toEqual([leased.id]);
    expect(count(f, 'mappings')).toBe(0);
    expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(0n);
  });

  it('renew without a lease is EINVAL unless a lease is given', () => {
    const f = coreFixture();
    const ctx = f.core.contexts.create(f.alice, {});
    expect(errnoOf(() => f.core.contexts.renew(f.alice, ctx.id))).toBe('EINVAL');
    expect(f.core.contexts.renew(f.alice, ctx.id, 30).expiresAt).toBe(f.clock.now + 30_000);
  });

  it('a lease that ran out while the server was down is released at start-up', () => {
    const { f } = fileFixture();
    const ctx = f.core.contexts.create(f.alice, { leaseSeconds: 5 });
    f.core.ioas.create(f.alice, ctx.id);
    f.clock.now += 60_000;
    const restarted = f.restart();
    expect(restarted.contexts.reapExpired()).toEqual([ctx.id]);
    expect(count(f, 'ioas')).toBe(0);
  });
});

describe('quotas', () => {
  const quota = (f: CoreFixture, q: Partial<{ maxIoas: number; maxMappings: number; maxPinnedBytes: bigint }>) =>
    f.quotas.set('alice', { maxIoas: 1024, maxMappings: 65535, maxPinnedBytes: U64_MAX, maxPasids: 1024, maxContexts: 1024, ...q });

  it('maxIoas: ENOSPC past it', () => {
    const f = coreFixture();
    quota(f, { maxIoas: 2 });
    const ctx = f.core.contexts.create(f.alice, {});
    f.core.ioas.create(f.alice, ctx.id);
    f.core.ioas.create(f.alice, ctx.id);
    expect(errnoOf(() => f.core.ioas.create(f.alice, ctx.id))).toBe('ENOSPC');
  });

  it('maxMappings: ENOSPC past it, across all of the principal\'s address spaces; a batch is all or nothing', () => {
    const f = coreFixture();
    quota(f, { maxMappings: 3 });
    const ctx = f.core.contexts.create(f.alice, {});
    const a = f.core.ioas.create(f.alice, ctx.id);
    const b = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.map(f.alice, a.id, { iova: P, length: P, userAddress: 0n, ...rw });
    expect(errnoOf(() => f.core.mappings.mapBatch(f.alice, b.id, [1n, 2n, 3n].map((k) => ({ iova: k * P, length: P, userAddress: 0n, ...rw }))))).toBe('ENOSPC');
    expect(b.mappings.size).toBe(0);
    expect(count(f, 'mappings')).toBe(1);
    f.core.mappings.mapBatch(f.alice, b.id, [1n, 2n].map((k) => ({ iova: k * P, length: P, userAddress: 0n, ...rw })));
    expect(errnoOf(() => f.core.mappings.map(f.alice, a.id, { iova: 9n * P, length: P, userAddress: 0n, ...rw }))).toBe('ENOSPC');
  });

  it('maxPinnedBytes: ENOMEM past it; a copy shares its source\'s charge, released with the last mapping', () => {
    const f = coreFixture();
    quota(f, { maxPinnedBytes: 4n * P });
    const ctx = f.core.contexts.create(f.alice, {});
    const a = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.map(f.alice, a.id, { iova: P, length: 3n * P, userAddress: 0n, ...rw });
    expect(errnoOf(() => f.core.mappings.map(f.alice, a.id, { iova: 8n * P, length: 2n * P, userAddress: 0n, ...rw }))).toBe('ENOMEM');
    f.core.mappings.copy(f.alice, a.id, { srcIoasId: a.id, srcIova: P, length: 3n * P, dstIova: 16n * P, ...rw });
    expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(3n * P);
    f.core.mappings.unmap(f.alice, a.id, { iova: P, length: 3n * P });
    expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(3n * P); // the copy still holds the pages
    f.core.mappings.unmap(f.alice, a.id, { all: true });
    expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(0n);
    expect(pagesLeft(f)).toBe(0);
  });
});

describe('persistence', () => {
  it('rebuilds every address space, id, charge and allowed range from the database', () => {
    const { f } = fileFixture();
    const ctx = f.core.contexts.create(f.alice, { name: 'vm' });
    const a = f.core.ioas.create(f.alice, ctx.id);
    const b = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.setAllowedRanges(f.alice, a.id, [{ start: 0x100000n, last: 0xffffffn }]);
    f.core.mappings.map(f.alice, a.id, { iova: U64_MAX - P, length: P, userAddress: 1n << 63n, read: true, write: false });
    f.core.mappings.map(f.alice, a.id, { length: 0x3000n, userAddress: 0x7f0000000000n, ...rw });
    f.core.mappings.copy(f.alice, b.id, { srcIoasId: a.id, srcIova: U64_MAX - P, length: P, dstIova: 0n, read: true, write: false });
    f.core.ioas.destroy(f.alice, b.id);
    const before = [...a.mappings.from()].map((m) => ({ ...m, pages: m.pages.id }));
    const usage = f.core.quotas.usageFor('alice');

    const r = f.restart();
    const again = r.ioas.get(f.alice, a.id);
    expect([...again.mappings.from()].map((m) => ({ ...m, pages: m.pages.id }))).toEqual(before);
    expect(again.allowed).toEqual([{ start: 0x100000n, last: 0xffffffn }]);
    expect(r.quotas.usageFor('alice')).toEqual(usage);
    expect(r.contexts.get(f.alice, ctx.id).name).toBe('vm');
    expect(r.ioas.create(f.alice, ctx.id).id).toBe(b.id);
    // Unmapping after the restart releases the restored charge.
    r.mappings.unmap(f.alice, a.id, { all: true });
    expect(r.quotas.usageFor('alice').pinnedBytes).toBe(0n);
  });

  it('a refused change leaves memory and database as they were', () => {
    const { f } = fileFixture();
    const ctx = f.core.contexts.create(f.alice, {});
    const a = f.core.ioas.create(f.alice, ctx.id);
    f.core.mappings.map(f.alice, a.id, { iova: 8n * P, length: P, userAddress: 0n, ...rw });
    expect(errnoOf(() => f.core.mappings.mapBatch(f.alice, a.id, [
      { iova: P, length: P, userAddress: 0n, ...rw },
      { iova: 2n * P, length: P, userAddress: 0n, ...rw },
      { iova: 8n * P, length: P, userAddress: 0n, ...rw },
    ]))).toBe('EEXIST');
    expect([...a.mappings.from()].map((m) => m.iova)).toEqual([8n * P]);
    expect(count(f, 'mappings')).toBe(1);
    expect(pagesLeft(f)).toBe(1);
    expect(f.core.quotas.usageFor('alice')).toEqual({ ioas: 1, mappings: 1, pinnedBytes: P });
    expect([...f.restart().ioas.get(f.alice, a.id).mappings.from()].map((m) => m.iova)).toEqual([8n * P]);
  });
});
