import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IovaSpace } from '../../src/core/iova-space.js';
import { SharedPages } from '../../src/core/mapping-rows.js';
import type { Mapping, Pages } from '../../src/core/model.js';
import { U64_MAX } from '../../src/core/u64.js';

/**
 * Mappings stored as rows of the IOVA index and materialized on read: every field comes back exact
 * (u64 values up to 2^64-1), and pinned pages keep one identity and one reference count however many
 * mappings (copies, in any address space of the allocator) share them.
 */
const space = (shared: SharedPages, id = 1) => new IovaSpace(id, 'ctx', 'alice', 'now', shared);

function mapping(iova: bigint, length: bigint, userAddress: bigint, pages: Pages, read = true, write = true): Mapping {
  return { iova, last: iova + length - 1n, length, userAddress, read, write, pages };
}

function newPages(id: number, bytes: bigint, writable = true): Pages {
  return { id, principalId: 'alice', bytes, writable, refs: 0 };
}

/** What the allocator does around an insert: the reference is counted after it. */
function add(s: IovaSpace, m: Mapping): void {
  s.mappings.insert(m);
  m.pages.refs++;
}

/** What the allocator does around a remove: the reference is dropped after it; true when it was the last. */
function drop(s: IovaSpace, m: Mapping): boolean {
  s.mappings.remove(m.iova);
  m.pages.refs--;
  return m.pages.refs === 0;
}

const u64 = fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.bigInt({ min: U64_MAX - 5000n, max: U64_MAX }), fc.bigInt({ min: 2n ** 53n - 5000n, max: 2n ** 53n + 5000n }));

describe('mapping rows', () => {
  it('materializes every field exactly, up to 2^64-1', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ iova: u64, length: fc.bigInt({ min: 1n, max: 2n ** 40n }), ua: u64, read: fc.boolean(), write: fc.boolean(), writable: fc.boolean() }), { maxLength: 60 }),
        (rows) => {
          const s = space(new SharedPages());
          const want = new Map<bigint, Mapping>();
          let id = 1;
          for (const r of rows) {
            const length = r.iova + r.length - 1n > U64_MAX ? U64_MAX - r.iova + 1n : r.length;
            const m = mapping(r.iova, length, r.ua, newPages(id++, length, r.writable), r.read, r.write);
            if (s.mappings.overlaps(m.iova, m.last)) continue;
            add(s, m);
            want.set(m.iova, m);
          }
          s.mappings.checkInvariants();
          for (const got of s.mappings.from()) {
            const m = want.get(got.iova)!;
            expect(got).toEqual({ ...m, pages: { ...m.pages, refs: 1 } });
          }
          expect(s.mappings.size).toBe(want.size);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps a private pages object as nothing but its id, and hands out a fresh one each time', () => {
    const shared = new SharedPages();
    const s = space(shared);
    add(s, mapping(0x1000n, 0x2000n, 0x7000n, newPages(7, 0x2000n, false), true, false));
    const a = s.mappings.find(0x1000n)!;
    s.mappings.insert(mapping(0x9000n, 0x1000n, 0n, newPages(8, 0x1000n))); // any change drops the reused item
    const b = s.mappings.find(0x1000n)!;
    expect(a.pages).toEqual({ id: 7, principalId: 'alice', bytes: 0x2000n, writable: false, refs: 1 });
    expect(b.pages).toEqual(a.pages);
    expect(b.pages).not.toBe(a.pages);
    expect(shared.size).toBe(0);
  });

  it('shares one pages object between a mapping and its copies in other spaces, and releases it with the last', () => {
    const shared = new SharedPages();
    const src = space(shared, 1);
    const dst = space(shared, 2);
    add(src, mapping(0x10000n, 0x4000n, 0x7f0000000000n, newPages(1, 0x4000n)));
    // IOMMU_IOAS_COPY: the pieces carry the source mapping's pages as read from it.
    const source = src.mappings.find(0x10000n)!;
    const copy1 = mapping(0x20000n, 0x1000n, source.userAddress + 0x1000n, source.pages, true, false);
    const copy2 = mapping(0x30000n, 0x4000n, source.userAddress, source.pages);
    add(dst, copy1);
    add(src, copy2);
    expect(shared.size).toBe(1);
    const pages = src.mappings.find(0x10000n)!.pages;
    expect(pages).toBe(source.pages);
    expect(dst.mappings.find(0x20000n)!.pages).toBe(pages);
    expect(src.mappings.find(0x30000n)!.pages).toBe(pages);
    expect(pages).toMatchObject({ id: 1, bytes: 0x4000n, refs: 3 });
    // A copy's length differs from the pages' bytes; the materialized copy says both.
    expect(dst.mappings.find(0x20000n)!).toMatchObject({ length: 0x1000n, write: false, pages: { bytes: 0x4000n, writable: true } });

    expect(drop(src, src.mappings.find(0x10000n)!)).toBe(false);
    expect(drop(dst, dst.mappings.find(0x20000n)!)).toBe(false);
    expect(shared.size).toBe(1);
    expect(drop(src, src.mappings.find(0x30000n)!)).toBe(true);
    expect(shared.size).toBe(0);
  });

  it('puts a removed mapping back (an undo) with its pages and count as they were', () => {
    const shared = new SharedPages();
    const s = space(shared);
    add(s, mapping(0x1000n, 0x1000n, 0x5000n, newPages(3, 0x1000n)));
    const m = s.mappings.find(0x1000n)!;
    expect(drop(s, m)).toBe(true);
    m.pages.refs++;
    s.mappings.insert(m);
    const back = s.mappings.find(0x1000n)!;
    expect(back).toEqual(m);
    expect(back.pages.refs).toBe(1);
    expect(drop(s, back)).toBe(true);
    expect(shared.size).toBe(0);
  });

  it('bulk-loads pages shared across spaces so that every mapping holding them hands out the same object', () => {
    // The allocator loads spaces one after the other, counting references as rows arrive: pages first
    // seen with one reference in space 1 turn out to be shared when space 2 loads.
    const shared = new SharedPages();
    const one = space(shared, 1);
    const two = space(shared, 2);
    const p = newPages(9, 0x2000n);
    const q = newPages(10, 0x1000n);
    p.refs = 1;
    q.refs = 1;
    one.mappings.load([mapping(0x1000n, 0x2000n, 0n, p), mapping(0x8000n, 0x1000n, 0n, q)]);
    p.refs = 2;
    two.mappings.load([mapping(0x4000n, 0x1000n, 0x1000n, p)]);
    expect(one.mappings.find(0x1000n)!.pages).toBe(p);
    expect(two.mappings.find(0x4000n)!.pages).toBe(p);
    expect(one.mappings.find(0x8000n)!.pages).not.toBe(q); // private: materialized afresh
    expect(one.mappings.find(0x8000n)!.pages).toEqual(q);
    expect(shared.size).toBe(1);
  });
});
