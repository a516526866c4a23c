import { beforeEach, describe, expect, it } from 'vitest';
import type { IovaSpace } from '../../src/core/iova-space.js';
import { coreFixture, errnoOf, P, U64_MAX, X86_MODEL, type CoreFixture } from './fixture.js';

/** VFIO type1v2 rules (group-first), one test per rule and errno (drivers/vfio/vfio_iommu_type1.c). */
let f: CoreFixture;
let ioas: IovaSpace;
const rw = { read: true, write: true };
const UA = 0x7f0000000000n;

beforeEach(() => {
  f = coreFixture('group-first');
  const ctx = f.core.contexts.create(f.alice, {});
  ioas = f.core.ioas.create(f.alice, ctx.id);
});

const map = (iova: bigint | undefined, length: bigint, userAddress = UA, flags = rw) =>
  f.core.mappings.map(f.alice, ioas.id, { iova, length, userAddress, ...flags });
const unmap = (iova: bigint, length: bigint) => f.core.mappings.unmap(f.alice, ioas.id, { iova, length });

describe('type1v2 map', () => {
  it('needs an IOMMU model (a group in the container): EINVAL, for map and unmap alike', () => {
    expect(errnoOf(() => map(P, P))).toBe('EINVAL');
    expect(errnoOf(() => unmap(P, P))).toBe('EINVAL');
    expect(errnoOf(() => f.core.mappings.unmap(f.alice, ioas.id, { all: true }))).toBe('EINVAL');
  });

  describe('with a model', () => {
    beforeEach(() => ioas.addDomain(X86_MODEL));

    it('iova is required: no auto-allocation (EINVAL)', () => {
      expect(errnoOf(() => map(undefined, P))).toBe('EINVAL');
    });

    it('neither read nor write: EINVAL', () => {
      expect(errnoOf(() => map(P, P, UA, { read: false, write: false }))).toBe('EINVAL');
    });

    it('length 0, or iova, length or userAddress not page aligned: EINVAL', () => {
      expect(errnoOf(() => map(P, 0n))).toBe('EINVAL');
      expect(errnoOf(() => map(P + 1n, P))).toBe('EINVAL');
      expect(errnoOf(() => map(P, P + 1n))).toBe('EINVAL');
      expect(errnoOf(() => map(P, P, UA + 0x800n))).toBe('EINVAL');
      expect(errnoOf(() => map(P, P))).toBe('ok');
    });

    it('a range wrapping past 2^64-1: EOVERFLOW', () => {
      expect(errnoOf(() => map(U64_MAX - P + 1n, 2n * P))).toBe('EOVERFLOW');
      expect(errnoOf(() => map(P, 2n * P, U64_MAX - P + 1n))).toBe('EOVERFLOW');
    });

    it('overlap: EEXIST', () => {
      map(16n * P, 2n * P);
      expect(errnoOf(() => map(17n * P, 2n * P))).toBe('EEXIST');
      expect(errnoOf(() => map(18n * P, P))).toBe('ok');
    });

    it('past maxMappings: ENOSPC (checked after overlap, before the aperture, as dma_avail is)', () => {
      f.quotas.set('alice', { maxIoas: 10, maxMappings: 2, maxPinnedBytes: U64_MAX, maxPasids: 0, maxContexts: 1024 });
      map(P, P);
      map(2n * P, P);
      expect(errnoOf(() => map(3n * P, P))).toBe('ENOSPC');
      expect(errnoOf(() => map(P, P))).toBe('EEXIST');
      expect(errnoOf(() => map(1n << 50n, P))).toBe('ENOSPC');
    });

    it('outside the aperture or meeting a reserved region: EINVAL', () => {
      expect(errnoOf(() => map(1n << 48n, P))).toBe('EINVAL');
      expect(errnoOf(() => map((1n << 48n) - P, 2n * P))).toBe('EINVAL');
      expect(errnoOf(() => map(0xfee00000n - P, 2n * P))).toBe('EINVAL');
      expect(errnoOf(() => map(0xfef00000n, P))).toBe('ok');
    });

    it('copy and allowed ranges are iommufd features: EOPNOTSUPP', () => {
      map(P, P);
      expect(errnoOf(() => f.core.mappings.copy(f.alice, ioas.id, { srcIoasId: ioas.id, srcIova: P, length: P, dstIova: 4n * P, ...rw }))).toBe('EOPNOTSUPP');
      expect(errnoOf(() => f.core.mappings.setAllowedRanges(f.alice, ioas.id, []))).toBe('EOPNOTSUPP');
    });
  });
});

describe('type1v2 unmap', () => {
  beforeEach(() => ioas.addDomain(X86_MODEL));

  it('iova or length not aligned, or length 0: EINVAL', () => {
    map(16n * P, 4n * P);
    expect(errnoOf(() => unmap(16n * P + 1n, P))).toBe('EINVAL');
    expect(errnoOf(() => unmap(16n * P, P - 1n))).toBe('EINVAL');
    expect(errnoOf(() => unmap(16n * P, 0n))).toBe('EINVAL');
  });

  it('a mapping bisected at the start or at the end: EINVAL, nothing removed', () => {
    map(16n * P, 4n * P);
    expect(errnoOf(() => unmap(17n * P, 8n * P))).toBe('EINVAL');
    expect(errnoOf(() => unmap(8n * P, 10n * P))).toBe('EINVAL');
    expect(ioas.mappings.size).toBe(1);
  });

  it('removes every mapping wholly inside; meeting nothing succeeds with 0 bytes', () => {
    map(16n * P, 4n * P);
    map(32n * P, P);
    expect(unmap(0n, 8n * P)).toBe(0n);
    expect(unmap(8n * P, 32n * P)).toBe(5n * P);
    expect(ioas.mappings.size).toBe(0);
  });

  it('16 single-page maps unmapped in shuffled order, then a 16-page map whole (selftest vfio_compat map)', () => {
    const base = 1n << 24n;
    map(base, 16n * P);
    expect(unmap(base, 16n * P)).toBe(16n * P);
    for (let i = 0n; i < 16n; i++) map(base + i * P, P);
    for (const i of [5n, 0n, 15n, 7n, 3n, 9n, 1n, 12n, 2n, 14n, 4n, 8n, 6n, 11n, 10n, 13n]) expect(unmap(base + i * P, P)).toBe(P);
    expect(ioas.mappings.size).toBe(0);
  });

  it('a huge mapping unmapped in pieces: EINVAL under v2 (selftest vfio_compat huge_map, type1v2)', () => {
    const base = 1n << 24n;
    map(base, 2n * 0x200000n);
    expect(errnoOf(() => unmap(base, 0x200000n / 8n))).toBe('EINVAL');
  });

  it('{all: true} removes everything', () => {
    map(P, P);
    map(5n * P, 3n * P);
    expect(f.core.mappings.unmap(f.alice, ioas.id, { all: true })).toBe(4n * P);
  });
});
