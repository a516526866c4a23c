/** Value encodings shared by the table codecs: u64 columns (order-preserving signed integers) and JSON columns. */
import type { Iommu, Quotas, ReservedRegion } from '../core/model.js';
import { fromKey, toKey } from '../core/u64.js';

/**
 * JSON columns keep u64 values as the same 16-digit hex text the address columns use, so a stored
 * document reads back exactly.
 */
interface StoredRegion {
  start: string;
  last: string;
  type: string;
}

export function encodeRegions(regions: readonly ReservedRegion[]): string {
  return JSON.stringify(regions.map((r) => ({ start: toKey(r.start), last: toKey(r.last), type: r.type })));
}

export function decodeRegions(text: string): ReservedRegion[] {
  return (JSON.parse(text) as StoredRegion[]).map((r) => ({ start: fromKey(r.start), last: fromKey(r.last), type: r.type }));
}

export function encodeIommu(iommu: Iommu): string {
  return JSON.stringify({
    pageSizes: iommu.pageSizes.map(toKey),
    aperture: { start: toKey(iommu.aperture.start), last: toKey(iommu.aperture.last) },
    reservedRegions: JSON.parse(encodeRegions(iommu.reservedRegions)) as StoredRegion[],
    pasidBits: iommu.pasidBits,
    features: iommu.features,
  });
}

export function decodeIommu(text: string): Iommu {
  const raw = JSON.parse(text) as {
    pageSizes: string[];
    aperture: { start: string; last: string };
    reservedRegions: StoredRegion[];
    pasidBits: number;
    features: Iommu['features'];
  };
  return {
    pageSizes: raw.pageSizes.map(fromKey),
    aperture: { start: fromKey(raw.aperture.start), last: fromKey(raw.aperture.last) },
    reservedRegions: decodeRegions(JSON.stringify(raw.reservedRegions)),
    pasidBits: raw.pasidBits,
    features: raw.features,
  };
}

export function encodeQuotas(q: Quotas): string {
  return JSON.stringify({ ...q, maxPinnedBytes: toKey(q.maxPinnedBytes) });
}

export function decodeQuotas(text: string): Quotas {
  const raw = JSON.parse(text) as Omit<Quotas, 'maxPinnedBytes' | 'maxContexts'> & { maxPinnedBytes: string; maxContexts?: number };
  // maxContexts came later: principals stored before it get its default.
  return { ...raw, maxContexts: raw.maxContexts ?? 1024, maxPinnedBytes: fromKey(raw.maxPinnedBytes) };
}

const OFFSET = 1n << 63n;

/** u64 -> signed 64-bit with the same order (value - 2^63), for INTEGER columns. */
export function encodeU64(n: bigint): bigint {
  return n - OFFSET;
}

export function decodeU64(v: bigint): bigint {
  return v + OFFSET;
}

export function encodeRanges(ranges: readonly { start: bigint; last: bigint }[]): string {
  return JSON.stringify(ranges.map((r) => ({ start: toKey(r.start), last: toKey(r.last) })));
}

export function decodeRanges(text: string): { start: bigint; last: bigint }[] {
  return (JSON.parse(text) as { start: string; last: string }[]).map((r) => ({ start: fromKey(r.start), last: fromKey(r.last) }));
}
