import type { Range } from './model.js';
import { U64_MAX } from './u64.js';

/** Inclusive u64 ranges: sorting, merging, complements. Small lists only (reserved sets, allowed lists). */

export function meets(a: Range, b: Range): boolean {
  return a.start <= b.last && b.start <= a.last;
}

export function sortRanges(ranges: readonly Range[]): Range[] {
  return [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** Sorted, with touching or overlapping ranges joined. */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of sortRanges(ranges)) {
    const prev = out[out.length - 1];
    if (prev && (prev.last === U64_MAX || r.start <= prev.last + 1n)) {
      if (r.last > prev.last) prev.last = r.last;
    } else {
      out.push({ start: r.start, last: r.last });
    }
  }
  return out;
}

/** The parts of [0, 2^64-1] not covered by `ranges`. */
export function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let cursor = 0n;
  let done = false;
  for (const r of mergeRanges(ranges)) {
    if (r.start > cursor) out.push({ start: cursor, last: r.start - 1n });
    if (r.last === U64_MAX) {
      done = true;
      break;
    }
    cursor = r.last + 1n;
  }
  if (!done) out.push({ start: cursor, last: U64_MAX });
  return out;
}

/** Parts of `within` (sorted, disjoint) that are also inside [start, last]. */
export function clip(within: readonly Range[], start: bigint, last: bigint): Range[] {
  const out: Range[] = [];
  for (const r of within) {
    const s = r.start > start ? r.start : start;
    const l = r.last < last ? r.last : last;
    if (s <= l) out.push({ start: s, last: l });
  }
  return out;
}

export function anyMeets(ranges: readonly Range[], r: Range): boolean {
  return ranges.some((x) => meets(x, r));
}
