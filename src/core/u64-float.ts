/**
 * A u64 as a float64 plus a small correction, for flat typed-array storage without BigInt.
 *
 * `approx = Number(x)` is the float64 nearest to x; `x - approx` is 0 below 2^53 and at most 1024 in
 * magnitude below 2^64 (float64 spacing there is 2048). So (approx, delta) is exact, and ordering by
 * approx then delta is ordering by x: rounding is monotonic, and equal approxes differ only by delta.
 * Values below 2^53 (every address a real machine has) never touch BigInt on the way in.
 */

/** Below this, a float64 holds every integer exactly (2^53 itself is the first inexact bound). */
export const EXACT = 2 ** 53;

/** x - Number(x), given approx = Number(x). */
export function deltaOf(x: bigint, approx: number): number {
  return approx < EXACT ? 0 : Number(x - BigInt(approx));
}

/** The exact value back. */
export function joinU64(approx: number, delta: number): bigint {
  return delta === 0 ? BigInt(approx) : BigInt(approx) + BigInt(delta);
}

/** -1024..1024 <-> 0..2048 (zigzag), so that a zero delta encodes as 0. */
export const DELTA_CODES = 2049;

export function zigzag(d: number): number {
  return d >= 0 ? 2 * d : -2 * d - 1;
}

export function unzigzag(z: number): number {
  return z & 1 ? -(z + 1) / 2 : z / 2;
}

/** (a1 + d1) compared with (a2 + d2): negative, zero or positive. */
export function compareSplit(a1: number, d1: number, a2: number, d2: number): number {
  if (a1 !== a2) return a1 < a2 ? -1 : 1;
  return d1 - d2;
}
