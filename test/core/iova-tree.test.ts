import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IovaTree, type Hole, type Span } from '../../src/core/iova-tree.js';
import { U64_MAX } from '../../src/core/u64.js';

/** The obvious model: a sorted array, O(n) everything. */
class ModelSpans {
  items: Span[] = [];
  insert(s: Span): void {
    this.items.push(s);
    this.items.sort((a, b) => (a.iova < b.iova ? -1 : 1));
  }
  remove(iova: bigint): Span | undefined {
    const i = this.items.findIndex((s) => s.iova === iova);
    return i < 0 ? undefined : this.items.splice(i, 1)[0];
  }
  overlaps(start: bigint, last: bigint): boolean {
    return this.items.some((s) => s.iova <= last && s.last >= start);
  }
  /** Every hole in address order, clipped to the window. */
  holes(ws: bigint, wl: bigint): Hole[] {
    const out: Hole[] = [];
    let cursor = 0n;
    for (const s of [...this.items, { iova: U64_MAX + 1n, last: U64_MAX + 1n }]) {
      if (s.iova > cursor) {
        const start = cursor > ws ? cursor : ws;
        const last = s.iova - 1n < wl ? s.iova - 1n : wl;
        if (start <= last) out.push({ start, last });
      }
      cursor = s.last + 1n;
    }
    return out;
  }
}

/** A first-fit placement: aligned start, `len` bytes inside the hole. */
function fitter(len: bigint, align: bigint) {
  return (h: Hole): bigint | undefined => {
    const at = ((h.start + align - 1n) / align) * align;
    return at <= h.last && h.last - at >= len - 1n ? at : undefined;
  };
}

type Op =
  | { op: 'insert'; iova: bigint; len: bigint }
  | { op: 'remove'; pick: number }
  | { op: 'fit'; ws: bigint; wl: bigint; len: bigint; alignBits: number };

function opArb(space: bigint): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), iova: fc.bigInt({ min: 0n, max: space }), len: fc.bigInt({ min: 1n, max: space / 50n + 1n }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('fit' as const),
        ws: fc.bigInt({ min: 0n, max: space }),
        wl: fc.bigInt({ min: 0n, max: space }),
        len: fc.bigInt({ min: 1n, max: space / 20n + 1n }),
        alignBits: fc.integer({ min: 0, max: 6 }),
      }),
    },
  );
}

function run(ops: Op[], space: bigint, base: bigint): void {
  const tree = new IovaTree<Span>();
  const model = new ModelSpans();
  for (const o of ops) {
    if (o.op === 'insert') {
      const iova = base + o.iova;
      const last = iova + o.len - 1n > U64_MAX ? U64_MAX : iova + o.len - 1n;
      expect(tree.overlaps(iova, last)).toBe(model.overlaps(iova, last));
      if (!model.overlaps(iova, last)) {
        tree.insert({ iova, last });
        model.insert({ iova, last });
      }
    } else if (o.op === 'remove') {
      if (model.items.length === 0) continue;
      const victim = model.items[o.pick % model.items.length]!;
      expect(tree.remove(victim.iova)).toEqual(model.remove(victim.iova));
      expect(tree.remove(victim.iova)).toBeUndefined();
    } else {
      const ws = base + (o.ws < o.wl ? o.ws : o.wl);
      const wl = base + (o.ws < o.wl ? o.wl : o.ws);
      const fit = fitter(o.len, 1n << BigInt(o.alignBits));
      const expected = model.holes(ws, wl).map(fit).find((x) => x !== undefined);
      expect(tree.firstFit(ws, wl, o.len, fit)).toBe(expected);
    }
    expect(tree.size).toBe(model.items.length);
  }
  tree.checkInvariants();
  expect([...tree.from()]).toEqual(model.items);
  const probe = base + space / 2n;
  expect(tree.find(probe)).toEqual(model.items.find((s) => s.iova <= probe && s.last >= probe));
  const meets = model.items.filter((s) => s.iova <= probe + space / 10n && s.last >= probe);
  expect([...tree.meeting(probe, probe + space / 10n)]).toEqual(meets);
  expect(tree.meetingList(probe, probe + space / 10n)).toEqual(meets);
  for (const s of model.items.slice(0, 5)) expect(tree.meetingList(s.iova, s.last)).toEqual([s]);
  for (const s of model.items.slice(0, 5)) {
    expect(tree.exactly(s.iova, s.last)).toEqual(s);
    expect(tree.exactly(s.iova, s.last + 1n)).toBeUndefined();
    if (s.iova < s.last) expect(tree.exactly(s.iova + 1n, s.last)).toBeUndefined();
  }
  expect(IovaTree.fromSorted(model.items).size).toBe(model.items.length);
  const rebuilt = IovaTree.fromSorted(model.items);
  rebuilt.checkInvariants();
  expect([...rebuilt.from()]).toEqual(model.items);
}

describe('IovaTree', () => {
  it('agrees with a sorted-array model on random operations (small space, many collisions)', () => {
    fc.assert(fc.property(fc.array(opArb(4000n), { maxLength: 400 }), (ops) => run(ops, 4000n, 0n)), { numRuns: 150 });
  });

  it('agrees with the model at the top of the u64 range', () => {
    const base = U64_MAX - 100_000n;
    fc.assert(fc.property(fc.array(opArb(100_000n), { maxLength: 300 }), (ops) => run(ops, 100_000n, base)), { numRuns: 60 });
  });

  it('stays balanced and consistent through many inserts and removes (splits and merges)', () => {
    const tree = new IovaTree<Span>();
    const live: bigint[] = [];
    for (let i = 0; i < 20_000; i++) {
      const iova = BigInt(((i * 7919) % 20_000) * 16);
      tree.insert({ iova, last: iova + 7n });
      live.push(iova);
    }
    tree.checkInvariants();
    const removed = new Set<bigint>();
    for (let i = 0; i < 19_000; i++) {
      const victim = live[(i * 31) % 20_000]!;
      expect(tree.remove(victim) !== undefined).toBe(!removed.has(victim));
      removed.add(victim);
    }
    tree.checkInvariants();
    expect(tree.size).toBe(20_000 - removed.size);
    expect([...tree.from()].map((s) => s.iova)).toEqual(live.filter((v) => !removed.has(v)).sort((a, b) => (a < b ? -1 : 1)));
  });

  it('keeps every level consistent in a three-level tree under random removes, inserts and first fits', () => {
    // Thousands of areas: splits and merges reach the branches above the leaves' parents.
    const model = new ModelSpans();
    const tree = new IovaTree<Span>();
    for (let i = 0n; i < 6000n; i++) {
      const s = { iova: i * 0x2000n, last: i * 0x2000n + 0xfffn };
      tree.insert(s);
      model.insert(s);
    }
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    const fit = fitter(0x2000n, 0x1000n);
    for (let k = 0; k < 3000; k++) {
      const victim = model.items[rnd(model.items.length)]!;
      tree.remove(victim.iova);
      model.remove(victim.iova);
      const want = model.holes(0n, U64_MAX).map(fit).find((x) => x !== undefined)!;
      const got = tree.firstFit(0n, U64_MAX, 0x2000n, fit)!;
      expect(got).toBe(want);
      const s = { iova: got, last: got + 0x1fffn };
      tree.insert(s);
      model.insert(s);
      if (k % 100 === 0) tree.checkInvariants();
    }
    tree.checkInvariants();
    expect([...tree.from()]).toEqual(model.items);
  });

  it('finds the lowest fitting hole past a million-byte run of packed areas quickly', () => {
    const packed = Array.from({ length: 100_000 }, (_, i) => ({ iova: BigInt(i) * 0x1000n, last: BigInt(i) * 0x1000n + 0xfffn }));
    const tree = IovaTree.fromSorted(packed);
    tree.remove(0x5000n); // a one-page hole low down
    const fit = fitter(0x2000n, 0x1000n);
    expect(tree.firstFit(0n, U64_MAX, 0x2000n, fit)).toBe(100_000n * 0x1000n);
    expect(tree.firstFit(0n, U64_MAX, 0x1000n, fitter(0x1000n, 0x1000n))).toBe(0x5000n);
  });
});
