import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareSplit, deltaOf, EXACT, joinU64, unzigzag, zigzag } from '../../src/core/u64-float.js';
import { U64_MAX } from '../../src/core/u64.js';

/** u64 values weighted towards the edges where float64 stops being exact. */
const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.bigInt({ min: 2n ** 53n - 4096n, max: 2n ** 53n + 4096n }),
  fc.bigInt({ min: U64_MAX - 4096n, max: U64_MAX }),
  fc.bigInt({ min: 2n ** 63n - 4096n, max: 2n ** 63n + 4096n }),
);

const split = (x: bigint) => {
  const a = Number(x);
  return { a, d: deltaOf(x, a) };
};

describe('u64 as float64 + correction', () => {
  it('round-trips exactly, with a correction of at most 1024 and none below 2^53', () => {
    fc.assert(
      fc.property(u64, (x) => {
        const { a, d } = split(x);
        expect(joinU64(a, d)).toBe(x);
        expect(Math.abs(d)).toBeLessThanOrEqual(1024);
        if (x < 2n ** 53n) expect(d).toBe(0);
        if (a < EXACT) expect(d).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('orders like the exact values', () => {
    fc.assert(
      fc.property(u64, u64, (x, y) => {
        const p = split(x);
        const q = split(y);
        expect(Math.sign(compareSplit(p.a, p.d, q.a, q.d))).toBe(x < y ? -1 : x > y ? 1 : 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps 2^64-1 exact although its nearest float64 is 2^64', () => {
    const { a, d } = split(U64_MAX);
    expect(a).toBe(2 ** 64);
    expect(d).toBe(-1);
    expect(joinU64(a, d)).toBe(U64_MAX);
  });

  it('zigzag maps -1024..1024 onto 0..2048 and back', () => {
    const seen = new Set<number>();
    for (let d = -1024; d <= 1024; d++) {
      const z = zigzag(d);
      expect(unzigzag(z)).toBe(d);
      seen.add(z);
    }
    expect(seen.size).toBe(2049);
    expect(Math.max(...seen)).toBe(2048);
    expect(zigzag(0)).toBe(0);
  });
});
