import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IoasdError } from '../../src/core/errors.js';
import { fromKey, hex, parseU64, toKey, U64_MAX } from '../../src/core/u64.js';

const u64 = fc.bigInt({ min: 0n, max: U64_MAX });

describe('u64', () => {
  it('parses hex, decimal and safe integers exactly', () => {
    expect(parseU64('0x1000', 'x')).toBe(4096n);
    expect(parseU64('0XFFFFFFFFFFFFFFFF', 'x')).toBe(U64_MAX);
    expect(parseU64('18446744073709551615', 'x')).toBe(U64_MAX);
    expect(parseU64(2 ** 53 - 1, 'x')).toBe(2n ** 53n - 1n);
  });

  it('refuses values past 2^64-1 with EOVERFLOW and malformed ones with EINVAL', () => {
    const errnoOf = (v: unknown) => {
      try {
        parseU64(v, 'iova');
      } catch (err) {
        return (err as IoasdError).errno;
      }
      return 'ok';
    };
    expect(errnoOf('0x10000000000000000')).toBe('EOVERFLOW');
    expect(errnoOf('18446744073709551616')).toBe('EOVERFLOW');
    expect(errnoOf(-1)).toBe('EINVAL');
    expect(errnoOf(2 ** 53)).toBe('EINVAL');
    expect(errnoOf('0x')).toBe('EINVAL');
    expect(errnoOf('12abc')).toBe('EINVAL');
    expect(errnoOf(null)).toBe('EINVAL');
  });

  it('round-trips through the wire and storage forms', () => {
    fc.assert(fc.property(u64, (n) => parseU64(hex(n), 'x') === n && fromKey(toKey(n)) === n));
  });

  it('keeps numeric order in storage text order', () => {
    fc.assert(
      fc.property(u64, u64, (a, b) => {
        const textOrder = toKey(a) < toKey(b) ? -1 : toKey(a) > toKey(b) ? 1 : 0;
        const numOrder = a < b ? -1 : a > b ? 1 : 0;
        return textOrder === numOrder;
      }),
    );
  });
});
