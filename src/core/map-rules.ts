import { fail } from './errors.js';
import type { IovaSpace } from './iova-space.js';
import type { Mapping, Range } from './model.js';
import { clip, complement, mergeRanges, sortRanges } from './ranges.js';
import { U64_MAX } from './u64.js';

/**
 * The DMA mapping rules of SPEC 5, as pure checks over one address space. Two rule sets:
 * iommufd (device-first; drivers/iommu/iommufd/io_pagetable.c, ioas.c) and VFIO type1v2
 * (group-first; drivers/vfio/vfio_iommu_type1.c). Each check names the kernel function it mirrors.
 *
 * Deliberate differences from the kernel, kept small:
 * - iommufd checks the user address's page offset against the alignment before the reserved-set and
 *   overlap checks (the kernel does it later, in iopt_insert_area); SPEC 5 fixes this order.
 * - Auto-allocated IOVAs are aligned to min(pow2(length), lowbit(userAddress)) without the kernel's
 *   THP cap at 2 MiB (CONFIG_TRANSPARENT_HUGEPAGE): SPEC 4 states the rule without it.
 * - type1v2 reports an address range that wraps past 2^64-1 as EOVERFLOW (the kernel says EINVAL;
 *   a pending upstream fix moves it to EOVERFLOW), matching the iommufd answer.
 */

export const PAGE_SIZE = 0x1000n;
/** 2^53: below it a float64 holds every integer exactly. */
const EXACT_BIG = 1n << 53n;
const TOP = U64_MAX; // ULONG_MAX on a 64-bit kernel

export interface MapArgs {
  iova?: bigint | undefined;
  length: bigint;
  userAddress: bigint;
  read: boolean;
  write: boolean;
}

/** Checks that need no address space: they come before the ioas lookup (iommufd_ioas_map). */
export function checkIommufdMapArgs(a: MapArgs): void {
  if (!a.read && !a.write) fail('EINVAL', 'a mapping must allow read, write or both');
  if ((a.iova !== undefined && a.iova >= TOP) || a.length >= TOP) fail('EOVERFLOW', 'iova and length must be below 2^64-1');
}

/**
 * Where an iommufd map goes: the fixed iova checked, or an auto-allocated one. `pageOffsets` are the
 * user-address page offsets of the pieces (one for a map, one per source area for a copy).
 */
export function placeIommufd(space: IovaSpace, a: MapArgs, pageOffsets?: readonly bigint[]): bigint {
  // iopt_alloc_user_pages: the user range must not wrap.
  if (a.userAddress + a.length > TOP) fail('EOVERFLOW', 'userAddress + length is past 2^64-1');
  // iopt_alloc_pages / iopt_alloc_area_pages
  if (a.length === 0n) fail('EINVAL', 'length must not be 0');
  const align = space.alignment;
  if (misaligned(a.length, align)) fail('EINVAL', `length must be a multiple of the ioas alignment 0x${align.toString(16)}`);
  if (a.iova === undefined) {
    checkPageOffsets(a, pageOffsets, align);
    return autoIova(space, a.length, a.userAddress);
  }
  // iopt_check_iova
  if (misaligned(a.iova, align)) fail('EINVAL', `iova must be aligned to 0x${align.toString(16)}`);
  const last = a.iova + a.length - 1n;
  if (last > TOP) fail('EOVERFLOW', 'iova + length - 1 is past 2^64-1');
  checkPageOffsets(a, pageOffsets, align);
  const range = { start: a.iova, last };
  if (space.meetsReserved(range)) fail('EINVAL', `range ${fmt(range)} meets the reserved set (outside the aperture or a reserved region)`);
  if (space.mappings.overlaps(a.iova, last)) fail('EEXIST', `range ${fmt(range)} overlaps an existing mapping`);
  return a.iova;
}

/** x is not a multiple of align (with no domain, align is 1 and nothing is: no bigint division). */
function misaligned(x: bigint, align: bigint): boolean {
  return align !== 1n && x % align !== 0n;
}

/**
 * iopt_insert_area: the user address's offset in its page must keep the ioas alignment.
 * `pageOffsets`: of the pieces (a copy's source areas); by default, of the map's user address.
 */
function checkPageOffsets(a: MapArgs, pageOffsets: readonly bigint[] | undefined, align: bigint): void {
  if (align === 1n) return;
  for (const off of pageOffsets ?? [a.userAddress % PAGE_SIZE]) {
    if (off % align !== 0n) fail('EINVAL', `userAddress page offset 0x${off.toString(16)} is not aligned to 0x${align.toString(16)}`);
  }
}

/**
 * iopt_alloc_iova: first fit from low addresses, never 0, inside the allowed ranges when any,
 * skipping reserved ranges and mappings, keeping the user address's page offset.
 */
export function autoIova(space: IovaSpace, length: bigint, userAddress: bigint): bigint {
  if (length >= 1n << 63n) fail('EOVERFLOW', 'length too large to auto-allocate');
  const pow2 = roundUpPow2(length);
  const low = userAddress === 0n ? pow2 : userAddress & -userAddress;
  const align = low < pow2 ? low : pow2;
  if (align < space.alignment) {
    fail('EINVAL', `auto-allocated iova alignment 0x${align.toString(16)} (from length and userAddress) is below the ioas alignment 0x${space.alignment.toString(16)}`);
  }
  const pageOffset = userAddress % PAGE_SIZE;
  const fits = (hole: Range): bigint | undefined => {
    if (hole.start + align - 1n > TOP) return undefined;
    const aligned = ((hole.start + align - 1n) & ~(align - 1n)) | pageOffset;
    return aligned >= hole.last || hole.last - aligned < length - 1n ? undefined : aligned;
  };
  for (const w of searchWindows(space)) {
    const at = space.mappings.firstFit(w.start, w.last, length, fits);
    if (at !== undefined) return at;
  }
  fail('ENOSPC', `no free IOVA range of 0x${length.toString(16)} bytes aligned to 0x${align.toString(16)}`);
}

/**
 * The windows of each space, kept while its allowed ranges and reserved set are the same arrays
 * (both are replaced when they change, never edited in place): a batch of auto-allocated maps asks
 * a thousand times in a row.
 */
const windowsOf = new WeakMap<IovaSpace, { allowed: readonly Range[]; reserved: readonly Range[]; windows: Range[] }>();

/** [PAGE_SIZE, 2^64-1-PAGE_SIZE], narrowed to the allowed ranges when any, minus the reserved set. */
function searchWindows(space: IovaSpace): Range[] {
  const { allowed, reserved } = space;
  const known = windowsOf.get(space);
  if (known && known.allowed === allowed && known.reserved === reserved) return known.windows;
  const base = allowed.length > 0 ? sortRanges(allowed) : [{ start: PAGE_SIZE, last: TOP - PAGE_SIZE }];
  const clipped = mergeRanges(base.flatMap((r) => clip([r], PAGE_SIZE, TOP - PAGE_SIZE)));
  const free = complement(reserved);
  const windows = clipped.flatMap((w) => clip(free, w.start, w.last));
  windowsOf.set(space, { allowed, reserved, windows });
  return windows;
}

export function roundUpPow2(n: bigint): bigint {
  // Below 2^53 in float64s (powers of two are exact there), one conversion instead of a bigint shift per bit.
  if (n <= EXACT_BIG) {
    const x = Number(n);
    let q = 1;
    while (q < x) q *= 2;
    return BigInt(q);
  }
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

// ---- VFIO type1v2 ------------------------------------------------------------------------------

/** The container needs an IOMMU model (a group in it) before any DMA ioctl. */
export function requireIommuModel(space: IovaSpace): bigint {
  if (space.domains.length === 0) fail('EINVAL', 'the container has no IOMMU model yet: put a group in it first');
  return space.alignment; // 1 << __ffs(pgsize_bitmap): the smallest page size all domains support
}

/**
 * vfio_dma_do_map, up to the overlap check. The entry limit (ENOSPC) and the aperture check come
 * after it, in that order, as in the kernel; the caller runs {@link checkType1Aperture} after quotas.
 */
export function placeType1(space: IovaSpace, a: MapArgs): bigint {
  const pg = requireIommuModel(space);
  if (a.iova === undefined) fail('EINVAL', 'group-first mapping needs an iova: VFIO type1 does not allocate IOVAs');
  if (!a.read && !a.write) fail('EINVAL', 'a mapping must allow read, write or both');
  if (a.length === 0n || a.length % pg !== 0n || a.iova % pg !== 0n || a.userAddress % pg !== 0n) {
    fail('EINVAL', `length must be non-zero and iova, length and userAddress aligned to the page size 0x${pg.toString(16)}`);
  }
  if (a.iova + a.length - 1n > TOP || a.userAddress + a.length - 1n > TOP) fail('EOVERFLOW', 'the range wraps past 2^64-1');
  const range = { start: a.iova, last: a.iova + a.length - 1n };
  if (space.mappings.overlaps(range.start, range.last)) fail('EEXIST', `range ${fmt(range)} overlaps an existing mapping`);
  return a.iova;
}

/** vfio_iommu_iova_dma_valid: the range must lie inside one usable range (aperture minus reserved). */
export function checkType1Aperture(space: IovaSpace, iova: bigint, length: bigint): void {
  const range = { start: iova, last: iova + length - 1n };
  if (space.meetsReserved(range)) fail('EINVAL', `range ${fmt(range)} is outside the aperture or meets a reserved region`);
}

// ---- unmap ------------------------------------------------------------------------------------

export interface UnmapArgs {
  all?: boolean;
  iova?: bigint;
  length?: bigint;
}

/** The mappings an unmap removes, or a refusal; the caller removes them. */
export function planUnmap(space: IovaSpace, rules: 'iommufd' | 'type1v2', a: UnmapArgs): Mapping[] {
  if (rules === 'type1v2') requireIommuModel(space);
  if (a.all) {
    if (a.iova !== undefined || a.length !== undefined) fail('EINVAL', 'unmap {all: true} takes no iova or length');
    return everything(space);
  }
  if (a.iova === undefined || a.length === undefined) fail('EINVAL', 'unmap needs iova and length, or all: true');
  const { iova, length } = a;
  return rules === 'iommufd' ? planIommufdUnmap(space, iova, length) : planType1Unmap(space, iova, length);
}

function everything(space: IovaSpace): Mapping[] {
  return [...space.mappings.from()];
}

/** iommufd_ioas_unmap + iopt_unmap_iova_range: whole areas only, ENOENT otherwise or when nothing meets. */
function planIommufdUnmap(space: IovaSpace, iova: bigint, length: bigint): Mapping[] {
  if (iova === 0n && length === U64_MAX) return everything(space);
  if (iova >= TOP || length >= TOP) fail('EOVERFLOW', 'iova and length must be below 2^64-1');
  if (length === 0n) fail('EINVAL', 'length must not be 0');
  const last = iova + length - 1n;
  if (last > TOP) fail('EOVERFLOW', 'iova + length - 1 is past 2^64-1');
  // The common case, one whole mapping: areas do not overlap, so it is then the only one meeting.
  const exact = space.mappings.exactly(iova, last);
  if (exact) return [exact];
  const hit = space.mappings.meetingList(iova, last);
  if (hit.length === 0) fail('ENOENT', `no mapping in ${fmt({ start: iova, last })}`);
  for (const m of hit) {
    if (m.iova < iova || m.last > last) {
      fail('ENOENT', `mapping ${fmt({ start: m.iova, last: m.last })} is not wholly inside ${fmt({ start: iova, last })}: unmap whole mappings`);
    }
  }
  return hit;
}

/** vfio_dma_do_unmap (v2): no bisecting a mapping at either end; meeting nothing is success. */
function planType1Unmap(space: IovaSpace, iova: bigint, length: bigint): Mapping[] {
  const pg = space.alignment;
  if (iova % pg !== 0n) fail('EINVAL', `iova must be aligned to the page size 0x${pg.toString(16)}`);
  if (length === 0n || length % pg !== 0n) fail('EINVAL', `length must be a non-zero multiple of the page size 0x${pg.toString(16)}`);
  if (iova + length - 1n > TOP) fail('EOVERFLOW', 'iova + length - 1 is past 2^64-1');
  const last = iova + length - 1n;
  const first = space.mappings.find(iova);
  if (first && first.iova !== iova) fail('EINVAL', `iova 0x${iova.toString(16)} falls inside the mapping at 0x${first.iova.toString(16)}`);
  const end = space.mappings.find(last);
  if (end && end.last !== last) fail('EINVAL', `the range ends inside the mapping at 0x${end.iova.toString(16)}`);
  return space.mappings.meetingList(iova, last);
}

// ---- allowed ranges ----------------------------------------------------------------------------

/** iommufd_ioas_allow_iovas: start < last, no overlap within the list, nothing in the reserved set. */
export function checkAllowedRanges(space: IovaSpace, ranges: readonly Range[]): Range[] {
  ranges.forEach((r, i) => {
    if (r.start >= r.last) fail('EINVAL', `ranges[${i}]: start must be below last`, { problems: [{ path: `ranges[${i}]`, message: 'start >= last' }] });
  });
  const sorted = sortRanges(ranges);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.start <= sorted[i - 1]!.last) fail('EINVAL', `allowed ranges ${fmt(sorted[i - 1]!)} and ${fmt(sorted[i]!)} overlap`);
  }
  for (const r of sorted) if (space.meetsReserved(r)) fail('EADDRINUSE', `allowed range ${fmt(r)} meets the reserved set`);
  return sorted;
}

export function fmt(r: Range): string {
  return `0x${r.start.toString(16)}-0x${r.last.toString(16)}`;
}
