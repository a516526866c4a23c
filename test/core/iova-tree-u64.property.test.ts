import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IovaTree, type Hole, type Span } from '../../src/core/iova-tree.js';
import { U64_MAX } from '../../src/core/u64.js';

/**
 * The flat IOVA index against a sorted-array model where float64 stops being exact: addresses just
 * below and above 2^53, around 2^63 and up to 2^64-1, mixed in one tree, with holes whose float64
 * rounds up or down, bulk loads, and trees deep enough to split and merge at every level.
 */
class Model {
  items: Span[] = [];
  private index(iova: bigint): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.iova <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  insert(s: Span): void {
    this.items.splice(this.index(s.iova), 0, s);
  }
  remove(iova: bigint): Span | undefined {
    const i = this.index(iova) - 1;
    return i >= 0 && this.items[i]!.iova === iova ? this.items.splice(i, 1)[0] : undefined;
  }
  floor(a: bigint): Span | undefined {
    return this.items[this.index(a) - 1];
  }
  find(a: bigint): Span | undefined {
    const f = this.floor(a);
    return f && f.last >= a ? f : undefined;
  }
  overlaps(start: bigint, last: bigint): boolean {
    const f = this.floor(last);
    return f !== undefined && f.last >= start;
  }
  meeting(start: bigint, last: bigint): Span[] {
    return this.items.filter((s) => s.iova <= last && s.last >= start);
  }
  from(start: bigint, includeContaining: boolean): Span[] {
    return this.items.filter((s) => s.iova >= start || (includeContaining && s.last >= start));
  }
  /** The first hole (clipped to the window) where `fits` answers a placement. */
  firstFit(ws: bigint, wl: bigint, fits: (h: Hole) => bigint | undefined): bigint | undefined {
    let cursor = 0n;
    for (const s of [...this.items, { iova: U64_MAX + 1n, last: U64_MAX + 1n }]) {
      if (s.iova > cursor) {
        const start = cursor > ws ? cursor : ws;
        const last = s.iova - 1n < wl ? s.iova - 1n : wl;
        if (start <= last) {
          const at = fits({ start, last });
          if (at !== undefined) return at;
        }
      }
      if (s.last >= U64_MAX) return undefined;
      cursor = s.last + 1n;
    }
    return undefined;
  }
}

function fitter(len: bigint, align: bigint) {
  return (h: Hole): bigint | undefined => {
    const at = ((h.start + align - 1n) / align) * align;
    return at <= h.last && h.last - at >= len - 1n ? at : undefined;
  };
}

/** Where float64 is exact, where it just stops being, its coarsest spacing, and the very top. */
const REGIONS = [0n, 2n ** 53n - 3000n, 2n ** 63n - 50_000n, U64_MAX - 200_000n];
const SPAN = 200_000n;

const addr = fc.record({ r: fc.nat(REGIONS.length - 1), off: fc.bigInt({ min: 0n, max: SPAN }) }).map(({ r, off }) => {
  const a = REGIONS[r]! + off;
  return a > U64_MAX ? U64_MAX : a;
});
/** Mostly small lengths; sometimes huge ones, so gaps and lengths far beyond 2^53 occur. */
const len = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: 6000n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 2n ** 62n }) },
);

type Op =
  | { op: 'insert'; iova: bigint; len: bigint }
  | { op: 'remove'; pick: number }
  | { op: 'removeMissing'; at: bigint }
  | { op: 'fit'; ws: bigint; wl: bigint; len: bigint; alignBits: number }
  | { op: 'probe'; a: bigint; b: bigint };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('insert' as const), iova: addr, len }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeMissing' as const), at: addr }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fit' as const), ws: addr, wl: addr, len, alignBits: fc.integer({ min: 0, max: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('probe' as const), a: addr, b: addr }) },
);

function apply(tree: IovaTree<Span>, model: Model, o: Op): void {
  switch (o.op) {
    case 'insert': {
      const last = o.iova + o.len - 1n > U64_MAX ? U64_MAX : o.iova + o.len - 1n;
      expect(tree.overlaps(o.iova, last)).toBe(model.overlaps(o.iova, last));
      if (!model.overlaps(o.iova, last)) {
        tree.insert({ iova: o.iova, last });
        model.insert({ iova: o.iova, last });
      }
      break;
    }
    case 'remove': {
      if (model.items.length === 0) return;
      const victim = model.items[o.pick % model.items.length]!;
      // An unmap looks the whole area up first, then removes it (from the position it found).
      if (o.pick % 2 === 0) {
        expect(tree.exactly(victim.iova, victim.last)).toEqual(victim);
        if (victim.last > victim.iova) expect(tree.exactly(victim.iova, victim.last - 1n)).toBeUndefined();
      }
      expect(tree.remove(victim.iova)).toEqual(model.remove(victim.iova));
      break;
    }
    case 'removeMissing':
      if (!model.items.some((s) => s.iova === o.at)) expect(tree.remove(o.at)).toBeUndefined();
      break;
    case 'fit': {
      const ws = o.ws < o.wl ? o.ws : o.wl;
      const wl = o.ws < o.wl ? o.wl : o.ws;
      const fit = fitter(o.len, 1n << BigInt(o.alignBits));
      expect(tree.firstFit(ws, wl, o.len, fit)).toBe(model.firstFit(ws, wl, fit));
      break;
    }
    case 'probe': {
      const s = o.a < o.b ? o.a : o.b;
      const l = o.a < o.b ? o.b : o.a;
      expect(tree.find(o.a)).toEqual(model.find(o.a));
      expect(tree.floor(o.a)).toEqual(model.floor(o.a));
      expect(tree.overlaps(s, l)).toBe(model.overlaps(s, l));
      // The meeting list of a huge window can be the whole tree: compare its ends and length.
      const meets = model.meeting(s, l);
      const got = tree.meetingList(s, l);
      expect(got.length).toBe(meets.length);
      expect(got.slice(0, 3)).toEqual(meets.slice(0, 3));
      expect(got.slice(-3)).toEqual(meets.slice(-3));
      const first = tree.from(o.a, true).next();
      expect(first.done ? undefined : first.value).toEqual(model.from(o.a, true)[0]);
      const exact = tree.from(o.a, false).next();
      expect(exact.done ? undefined : exact.value).toEqual(model.from(o.a, false)[0]);
      break;
    }
  }
  expect(tree.size).toBe(model.items.length);
}

function check(tree: IovaTree<Span>, model: Model): void {
  tree.checkInvariants();
  expect([...tree.from()]).toEqual(model.items);
}

describe('IovaTree with addresses beyond 2^53', () => {
  it('agrees with the model on random operations across 2^53, 2^63 and 2^64-1', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const tree = new IovaTree<Span>();
        const model = new Model();
        for (const o of ops) apply(tree, model, o);
        check(tree, model);
      }),
      { numRuns: 120 },
    );
  });

  it('agrees with the model after a bulk load, then under random operations', () => {
    const sortedSpans = fc.array(fc.tuple(addr, len), { maxLength: 400 }).map((pairs) => {
      const model = new Model();
      for (const [iova, l] of pairs) {
        const last = iova + l - 1n > U64_MAX ? U64_MAX : iova + l - 1n;
        if (!model.overlaps(iova, last)) model.insert({ iova, last });
      }
      return model.items;
    });
    fc.assert(
      fc.property(sortedSpans, fc.array(opArb, { maxLength: 150 }), (spans, ops) => {
        const tree = IovaTree.fromSorted(spans);
        const model = new Model();
        model.items = [...spans];
        check(tree, model);
        for (const o of ops) apply(tree, model, o);
        check(tree, model);
      }),
      { numRuns: 80 },
    );
  });

  it('refuses a bulk load that is out of order or overlapping', () => {
    expect(() => IovaTree.fromSorted([{ iova: 10n, last: 20n }, { iova: 20n, last: 30n }])).toThrow(/out of order or overlapping/);
    expect(() => IovaTree.fromSorted([{ iova: U64_MAX, last: U64_MAX }, { iova: 5n, last: 6n }])).toThrow(/out of order or overlapping/);
  });

  it('settles a fit exactly where the hole size and the request round to the same float64', () => {
    // Holes of 2^60 + 1 and 2^60 + 3 bytes high in the space: both round to 2^60 as float64.
    const base = 2n ** 63n;
    const h = 2n ** 60n;
    const tree = new IovaTree<Span>();
    const spans = [
      { iova: base, last: base + 9n },
      { iova: base + 10n + h + 1n, last: base + 10n + h + 1n },
      { iova: base + 10n + 2n * h + 5n, last: U64_MAX },
    ];
    for (const s of spans) tree.insert(s);
    tree.checkInvariants();
    const holeOf = (size: bigint) => tree.firstFit(base, U64_MAX, size, fitter(size, 1n));
    expect(holeOf(h + 1n)).toBe(base + 10n); // the first hole fits exactly
    expect(holeOf(h + 2n)).toBe(base + 10n + h + 2n); // only the second one does
    expect(holeOf(h + 3n)).toBe(base + 10n + h + 2n);
    expect(holeOf(h + 4n)).toBeUndefined(); // nothing above: the last area reaches 2^64-1
    expect(tree.find(U64_MAX)).toEqual(spans[2]);
  });

  it('stays consistent through thousands of random inserts and removes at the top of the space (every level splits and merges)', () => {
    const tree = new IovaTree<Span>();
    const model = new Model();
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    const top = U64_MAX - 40_000_000n;
    for (let round = 0; round < 3; round++) {
      // Grow to ~12k areas (three levels), then shrink to a few hundred (merges up to the root).
      for (let k = 0; k < 12_000; k++) {
        const iova = top + BigInt(rnd(10_000_000)) * 4n;
        const last = iova + BigInt(rnd(3));
        if (!model.overlaps(iova, last)) {
          tree.insert({ iova, last });
          model.insert({ iova, last });
        }
      }
      tree.checkInvariants();
      for (let k = 0; k < 50; k++) {
        const size = BigInt(1 + rnd(64)) * 4n;
        const fit = fitter(size, 1n << BigInt(rnd(4)));
        const ws = top + BigInt(rnd(40_000_000));
        expect(tree.firstFit(ws, U64_MAX, size, fit)).toBe(model.firstFit(ws, U64_MAX, fit));
      }
      while (model.items.length > 300) {
        const victim = model.items[rnd(model.items.length)]!;
        expect(tree.remove(victim.iova)).toEqual(model.remove(victim.iova));
      }
      check(tree, model);
    }
  });
});
