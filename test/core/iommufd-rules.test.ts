import { beforeEach, describe, expect, it } from 'vitest';
import type { IovaSpace } from '../../src/core/iova-space.js';
import { roundUpPow2 } from '../../src/core/map-rules.js';
import { coreFixture, errnoOf, MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_DOMAIN, MOCK_PAGE_SIZE, P, U64_MAX, type CoreFixture } from './fixture.js';

/**
 * iommufd rules (device-first), one test per rule and errno, in SPEC 5 order. Where a kernel selftest
 * (tools/testing/selftests/iommu/iommufd.c) covers a rule its numbers are used; "no_domain" is an
 * ioas without domains (base 0, alignment 1), "mock_domain" one with the selftest's mock domain.
 */
let f: CoreFixture;
let ioas: IovaSpace;
const BUFFER = 0x7f0000000000n; // a page- and huge-page-aligned user buffer, as the selftest allocates
const rw = { read: true, write: true };

beforeEach(() => {
  f = coreFixture('device-first');
  const ctx = f.core.contexts.create(f.alice, {});
  ioas = f.core.ioas.create(f.alice, ctx.id);
});

const map = (iova: bigint | undefined, length: bigint, userAddress = BUFFER, flags = rw) =>
  f.core.mappings.map(f.alice, ioas.id, { iova, length, userAddress, ...flags });
const unmap = (iova: bigint, length: bigint) => f.core.mappings.unmap(f.alice, ioas.id, { iova, length });

describe('iommufd map: checks in order', () => {
  it('neither read nor write: EINVAL (before everything else)', () => {
    expect(errnoOf(() => map(0n, P, BUFFER, { read: false, write: false }))).toBe('EINVAL');
    expect(errnoOf(() => f.core.mappings.map(f.alice, 999, { iova: U64_MAX, length: 0n, userAddress: 0n, read: false, write: false }))).toBe('EINVAL');
  });

  it('iova or length >= 2^64-1: EOVERFLOW (before the ioas lookup)', () => {
    expect(errnoOf(() => map(U64_MAX, P))).toBe('EOVERFLOW');
    expect(errnoOf(() => map(0n, U64_MAX))).toBe('EOVERFLOW');
    expect(errnoOf(() => f.core.mappings.map(f.alice, 999, { iova: U64_MAX, length: P, userAddress: 0n, ...rw }))).toBe('EOVERFLOW');
  });

  it('ioas unknown, or another principal\'s: ENOENT', () => {
    expect(errnoOf(() => f.core.mappings.map(f.alice, 999, { iova: 0n, length: P, userAddress: BUFFER, ...rw }))).toBe('ENOENT');
    expect(errnoOf(() => f.core.mappings.map(f.bob, ioas.id, { iova: 0n, length: P, userAddress: BUFFER, ...rw }))).toBe('ENOENT');
  });

  it('userAddress + length past 2^64-1: EOVERFLOW (iopt_alloc_user_pages)', () => {
    expect(errnoOf(() => map(0n, 2n * P, U64_MAX - P))).toBe('EOVERFLOW');
  });

  it('length 0: EINVAL', () => {
    expect(errnoOf(() => map(0n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => map(undefined, 0n))).toBe('EINVAL');
  });

  it('length not a multiple of the alignment: EINVAL (selftest ioas_iova_alloc)', () => {
    f.core.ioas.get(f.alice, ioas.id).addDomain(MOCK_DOMAIN);
    for (let length = 1n; length < 2n * P; length++) {
      const expected = length % MOCK_PAGE_SIZE !== 0n ? 'EINVAL' : 'ok';
      expect(errnoOf(() => map(undefined, length)), `length ${length}`).toBe(expected);
      if (expected === 'ok') f.core.mappings.unmap(f.alice, ioas.id, { all: true });
    }
  });

  it('no_domain: any length auto-maps (selftest ioas_iova_alloc)', () => {
    for (const length of [1n, 2n, 511n, P - 1n, P + 1n, 2n * P - 1n]) {
      const m = map(undefined, length);
      expect(unmap(m.iova, length)).toBe(length);
    }
  });

  it('fixed iova not aligned: EINVAL', () => {
    ioas.addDomain(MOCK_DOMAIN);
    expect(errnoOf(() => map(MOCK_APERTURE_START + 0x100n, MOCK_PAGE_SIZE))).toBe('EINVAL');
    expect(errnoOf(() => map(MOCK_APERTURE_START + MOCK_PAGE_SIZE, MOCK_PAGE_SIZE))).toBe('ok');
  });

  it('iova + length - 1 past 2^64-1: EOVERFLOW', () => {
    expect(errnoOf(() => map(U64_MAX - P, 2n * P, 0n))).toBe('EOVERFLOW');
    expect(errnoOf(() => map(U64_MAX - P, P + 2n, 0n))).toBe('EOVERFLOW');
    expect(errnoOf(() => map(U64_MAX - P, P, 0n))).toBe('ok');
  });

  it('userAddress page offset not a multiple of the alignment: EINVAL (selftest ioas_align_change)', () => {
    ioas.addDomain({ ...MOCK_DOMAIN, key: 'huge-pages-off', minPageSize: P, aperture: { start: 0n, last: U64_MAX } });
    expect(errnoOf(() => map(MOCK_APERTURE_START + P, P, BUFFER + MOCK_PAGE_SIZE))).toBe('EINVAL');
    expect(errnoOf(() => map(MOCK_APERTURE_START + P, P, BUFFER))).toBe('ok');
  });

  it('alignment raise over a misaligned mapping: EADDRINUSE, and nothing changes (selftest ioas_align_change)', () => {
    map(MOCK_APERTURE_START, P, BUFFER);
    map(MOCK_APERTURE_START + P, P, BUFFER + MOCK_PAGE_SIZE); // fine at alignment 1
    const pageAligned = { key: 'huge-pages-off', minPageSize: P, aperture: { start: 0n, last: U64_MAX }, reserved: [] };
    expect(errnoOf(() => ioas.addDomain(pageAligned))).toBe('EADDRINUSE');
    expect(ioas.alignment).toBe(1n);
    unmap(MOCK_APERTURE_START + P, P);
    ioas.addDomain(pageAligned);
    expect(ioas.alignment).toBe(P);
  });

  it('fixed range meets the reserved set: EINVAL (outside the aperture or in a reserved region)', () => {
    ioas.addDomain(MOCK_DOMAIN);
    expect(errnoOf(() => map(MOCK_APERTURE_START - MOCK_PAGE_SIZE, 2n * MOCK_PAGE_SIZE))).toBe('EINVAL');
    expect(errnoOf(() => map(MOCK_APERTURE_LAST + 1n - MOCK_PAGE_SIZE, 2n * MOCK_PAGE_SIZE))).toBe('EINVAL');
    ioas.addDomain({ key: 'msi', minPageSize: 1n, aperture: { start: 0n, last: U64_MAX }, reserved: [{ start: 0x2000000n, last: 0x20fffffn }] });
    expect(errnoOf(() => map(0x2000000n - MOCK_PAGE_SIZE, 2n * MOCK_PAGE_SIZE))).toBe('EINVAL');
    expect(errnoOf(() => map(0x2100000n, MOCK_PAGE_SIZE))).toBe('ok');
  });

  it('fixed range overlapping a mapping by even one byte: EEXIST; adjacent is fine (selftest area)', () => {
    const base = 0n;
    map(base + 16n * P, 2n * P);
    for (const [iova, length] of [[16n, 2n], [16n, 1n], [17n, 1n], [15n, 2n], [15n, 3n]] as const) {
      expect(errnoOf(() => map(base + iova * P, length * P)), `${iova}P+${length}P`).toBe('EEXIST');
    }
    expect(errnoOf(() => map(base + 18n * P - 1n, 1n))).toBe('EEXIST');
    expect(errnoOf(() => map(base + 18n * P, P))).toBe('ok');
    expect(errnoOf(() => map(base + 15n * P, P))).toBe('ok');
  });

  it('fixed maps ignore allowed ranges; every map is its own mapping (no merging)', () => {
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 0x100000n, last: 0x1fffffn }]);
    map(0x1000n, P);
    map(0x2000n, P);
    expect(ioas.mappings.size).toBe(2);
    expect(unmap(0x1000n, P)).toBe(P);
    expect([...ioas.mappings.from()].map((m) => m.iova)).toEqual([0x2000n]);
  });
});

describe('iommufd auto-allocation (SPEC 4)', () => {
  it('never answers 0 and starts at the first page (selftest area_auto_iova)', () => {
    for (let i = 0; i < 10; i++) {
      const m = map(undefined, P);
      expect(m.iova).toBe(P);
      unmap(m.iova, P);
    }
  });

  it('aligns to min(pow2(length), lowest set bit of userAddress) (selftest area_auto_iova)', () => {
    const iovas: bigint[] = [];
    for (let i = 1n; i <= 10n; i++) {
      const length = i * P;
      const m = map(undefined, length, 1n << 31n);
      const pow2 = 1n << BigInt((length - 1n).toString(2).length);
      const align = pow2 < 1n << 31n ? pow2 : 1n << 31n;
      expect(m.iova % align, `length ${length}`).toBe(0n);
      iovas.push(m.iova);
    }
    expect(iovas[0]).toBe(P);
    // A user address with a low set bit wins over a large length.
    const small = map(undefined, 8n * P, BUFFER + 0x3000n);
    expect(small.iova % 0x1000n).toBe(0n);
  });

  it('keeps the page offset of userAddress in the IOVA', () => {
    const m = map(undefined, 0x100n, BUFFER + 0x123n);
    expect(m.iova % P).toBe(0x123n);
  });

  it('skips reserved ranges and stays inside allowed ranges (selftest area_auto_iova)', () => {
    ioas.addDomain({ key: 'reserved', minPageSize: 1n, aperture: { start: 0n, last: U64_MAX }, reserved: [{ start: 4n * P, last: 104n * P - 1n }] });
    for (let i = 1n; i <= 10n; i++) {
      const m = map(undefined, i * P, 1n << 31n);
      expect(m.iova > 4n * P && m.iova < 104n * P).toBe(false);
      expect(m.iova + i * P - 1n < 4n * P || m.iova >= 104n * P).toBe(true);
    }
    f.core.mappings.unmap(f.alice, ioas.id, { all: true });
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: P, last: 600n * P }]))).toBe('EADDRINUSE');
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 200n * P, last: 600n * P - 1n }]);
    for (let i = 1n; i <= 10n; i++) {
      const m = map(undefined, i * P, 1n << 31n);
      expect(m.iova >= 200n * P && m.iova + i * P <= 600n * P).toBe(true);
    }
  });

  it('an alignment below the ioas alignment: EINVAL', () => {
    ioas.addDomain(MOCK_DOMAIN);
    expect(errnoOf(() => map(undefined, MOCK_PAGE_SIZE, BUFFER + 0x400n))).toBe('EINVAL');
  });

  it('nothing fits: ENOSPC', () => {
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 0x10000n, last: 0x11fffn }]);
    map(undefined, 0x2000n, 0n);
    expect(errnoOf(() => map(undefined, P, 0n))).toBe('ENOSPC');
  });

  it('finds the hole above a long run of packed mappings', () => {
    f.core.mappings.mapBatch(f.alice, ioas.id, Array.from({ length: 2000 }, (_, i) => ({ iova: P * BigInt(i + 1), length: P, userAddress: 0n, ...rw })));
    expect(map(undefined, P, 0n).iova).toBe(2001n * P);
  });
});

describe('iommufd unmap', () => {
  it('on an empty ioas every range is ENOENT, all succeeds (selftest area)', () => {
    for (let i = 0n; i < 10n; i++) expect(errnoOf(() => unmap(i * P, P))).toBe('ENOENT');
    expect(unmap(0n, U64_MAX)).toBe(0n);
    expect(f.core.mappings.unmap(f.alice, ioas.id, { all: true })).toBe(0n);
  });

  it('whole mappings only: a cut through one is ENOENT and removes nothing (selftest area)', () => {
    for (let i = 0n; i < 10n; i++) map(i * P, P);
    for (let i = 0n; i < 10n; i++) expect(unmap(i * P, P)).toBe(P);
    map(16n * P, 2n * P);
    expect(errnoOf(() => unmap(16n * P, P))).toBe('ENOENT');
    expect(errnoOf(() => unmap(17n * P, P))).toBe('ENOENT');
    expect(ioas.mappings.size).toBe(1);
  });

  it('fully contained areas with holes between them go together (selftest unmap_fully_contained_areas)', () => {
    const base = 4n * P;
    for (let i = 0n; i < 4n; i++) map(base + i * 16n * P, 8n * P);
    expect(errnoOf(() => unmap(base - 4n * P, 8n * P))).toBe('ENOENT');
    expect(errnoOf(() => unmap(base + 3n * 16n * P + 8n * P - 4n * P, 8n * P))).toBe('ENOENT');
    expect(unmap(base - 4n * P, 3n * 16n * P + 8n * P + 4n * P + 4n * P)).toBe(32n * P);
    expect(ioas.mappings.size).toBe(0);
  });

  it('length 0: EINVAL; overflow: EOVERFLOW; no alignment needed', () => {
    map(0x10000n, 0x3000n);
    expect(errnoOf(() => unmap(0x10000n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => unmap(U64_MAX, 1n))).toBe('EOVERFLOW');
    expect(errnoOf(() => unmap(U64_MAX - 1n, 3n))).toBe('EOVERFLOW');
    expect(unmap(0xff01n, 0x3300n)).toBe(0x3000n);
  });

  it('unmap all by {all: true} or iova 0 and length 2^64-1', () => {
    map(P, P);
    map(3n * P, P);
    expect(unmap(0n, U64_MAX)).toBe(2n * P);
    map(P, P);
    expect(f.core.mappings.unmap(f.alice, ioas.id, { all: true })).toBe(P);
    expect(errnoOf(() => f.core.mappings.unmap(f.alice, ioas.id, { all: true, iova: 0n }))).toBe('EINVAL');
  });
});

describe('iommufd copy', () => {
  it('copies within and across address spaces (selftest copy_area)', () => {
    map(P, P);
    const same = f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: P, length: P, dstIova: 2n * P, ...rw });
    expect(same.map((m) => m.iova)).toEqual([2n * P]);
    const other = f.core.ioas.create(f.alice, ioas.contextId);
    const copy = f.core.mappings.copy(f.alice, other.id, { srcIoasId: ioas.id, srcIova: P, length: P, dstIova: 0n, ...rw });
    expect(copy[0]).toMatchObject({ iova: 0n, length: P, userAddress: BUFFER });
  });

  it('any source start inside the mapped range works, outside it is ENOENT (selftest copy_sweep)', () => {
    ioas.addDomain(MOCK_DOMAIN);
    const dst = f.core.ioas.create(f.alice, ioas.contextId);
    const BUFFER_SIZE = 16n * P;
    const lastIova = MOCK_APERTURE_START + BUFFER_SIZE - 1n;
    map(MOCK_APERTURE_START, BUFFER_SIZE);
    const len = MOCK_PAGE_SIZE;
    for (let src = MOCK_APERTURE_START - P; src <= lastIova; src += 511n) {
      const expected = src < MOCK_APERTURE_START || src + len - 1n > lastIova ? 'ENOENT' : 'ok';
      const got = errnoOf(() => f.core.mappings.copy(f.alice, dst.id, { srcIoasId: ioas.id, srcIova: src, length: len, dstIova: MOCK_APERTURE_START, ...rw }));
      expect(got, `src 0x${src.toString(16)}`).toBe(expected);
      if (got === 'ok') expect(f.core.mappings.unmap(f.alice, dst.id, { iova: MOCK_APERTURE_START, length: len })).toBe(len);
    }
  });

  it('spans several source mappings, splitting the copy at their boundaries', () => {
    map(0x10000n, 0x1000n, 0xa000n);
    map(0x11000n, 0x2000n, 0xb0000n);
    const pieces = f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10800n, length: 0x1000n, dstIova: 0x40000n, ...rw });
    expect(pieces.map((m) => [m.iova, m.length, m.userAddress])).toEqual([
      [0x40000n, 0x800n, 0xa800n],
      [0x40800n, 0x800n, 0xb0000n],
    ]);
  });

  it('a hole in the source: ENOENT', () => {
    map(0x10000n, P);
    map(0x12000n, P);
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: 0x3000n, ...rw }))).toBe('ENOENT');
  });

  it('write from a read-only source: EPERM', () => {
    map(0x10000n, P, BUFFER, { read: true, write: false });
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: P, read: true, write: true }))).toBe('EPERM');
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: P, read: true, write: false }))).toBe('ok');
  });

  it('is independent of the source: unmapping the source leaves it', () => {
    map(0x10000n, P);
    f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: P, dstIova: 0x20000n, ...rw });
    unmap(0x10000n, P);
    expect([...ioas.mappings.from()].map((m) => m.iova)).toEqual([0x20000n]);
  });

  it('placement follows the destination map rules (EEXIST, EINVAL, auto)', () => {
    map(0x10000n, P);
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: P, dstIova: 0x10000n, ...rw }))).toBe('EEXIST');
    const auto = f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: P, ...rw });
    expect(auto[0]!.iova).toBe(P);
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: 0x10000n, length: 0n, ...rw }))).toBe('EINVAL');
    expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: 999, srcIova: 0x10000n, length: P, ...rw }))).toBe('ENOENT');
  });
});

describe('allowed ranges and iova-ranges', () => {
  it('iova-ranges: whole space with no domain, the aperture with one (selftest iova_ranges)', () => {
    expect(ioas.usableRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(ioas.alignment).toBe(1n);
    ioas.addDomain({ key: 'resv', minPageSize: 1n, aperture: { start: 0n, last: U64_MAX }, reserved: [{ start: P, last: 2n * P - 1n }] });
    expect(ioas.usableRanges()).toEqual([{ start: 0n, last: P - 1n }, { start: 2n * P, last: U64_MAX }]);
    const mock = f.core.ioas.create(f.alice, ioas.contextId);
    mock.addDomain(MOCK_DOMAIN);
    expect(mock.usableRanges()).toEqual([{ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST }]);
    expect(mock.alignment).toBe(MOCK_PAGE_SIZE);
  });

  it('allowed ranges do not narrow iova-ranges', () => {
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 0x10000n, last: 0x1ffffn }]);
    expect(ioas.usableRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('start >= last, or overlapping ranges: EINVAL', () => {
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: P, last: P }]))).toBe('EINVAL');
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 2n * P, last: P }]))).toBe('EINVAL');
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 0n, last: 2n * P }, { start: 2n * P, last: 3n * P }]))).toBe('EINVAL');
  });

  it('a range meeting the reserved set: EADDRINUSE and the old list stays; a reserved region meeting an allowed range cannot come (selftest area_allowed)', () => {
    const base = 0n;
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: base, last: base + 600n * P }]);
    const resv = { key: 'resv', minPageSize: 1n, aperture: { start: 0n, last: U64_MAX }, reserved: [{ start: base + P, last: base + 2n * P - 1n }] };
    expect(errnoOf(() => ioas.addDomain(resv))).toBe('EADDRINUSE');
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, []);
    ioas.addDomain(resv);
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: base, last: base + 600n * P }]))).toBe('EADDRINUSE');
    f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 10n * P, last: 20n * P }]);
    expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, [{ start: 0n, last: 3n * P }]))).toBe('EADDRINUSE');
    expect(ioas.allowed).toEqual([{ start: 10n * P, last: 20n * P }]);
  });
});

describe('auto-allocation helpers', () => {
  it('roundUpPow2 is the least power of two at or above n, on either side of 2^53', () => {
    const slow = (n: bigint): bigint => {
      let p = 1n;
      while (p < n) p <<= 1n;
      return p;
    };
    const around = (x: bigint) => [x - 2n, x - 1n, x, x + 1n, x + 2n];
    const cases = [0n, 1n, 2n, 3n, 0x1000n, 0x1001n, ...around(1n << 52n), ...around(1n << 53n), ...around(1n << 54n), (1n << 63n) - 1n];
    for (const n of cases) expect(roundUpPow2(n), `n = 0x${n.toString(16)}`).toBe(slow(n));
  });
});
