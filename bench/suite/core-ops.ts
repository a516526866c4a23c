/**
 * The allocator operations being timed, shared by the core section (no-I/O store) and the store
 * section (the real SQLite store).
 *
 * Layout of a populated ioas: N mappings of 0x1000 bytes at BASE + i * 0x2000, so every mapping has a
 * 0x1000 hole below it (the first one too: the search window starts at PAGE_SIZE = 0x1000).
 */
import type { Allocator, Caller } from '../../src/core/allocator.js';
import { rng } from './common.js';

export const BASE = 0x2000n;
export const STRIDE = 0x2000n;
export const LENGTH = 0x1000n;
/** Auto-allocated maps are twice as long as any hole between the fixed mappings. */
export const AUTO_LENGTH = 0x2000n;
const USER = 0x7f00_0000_0000n;

export const BENCH_CALLER: Caller = { id: 'bench', role: 'user' };

export const iovaOf = (i: number): bigint => BASE + BigInt(i) * STRIDE;

/** Maps N fixed mappings through mapBatch, 10k at a time. */
export function populate(allocator: Allocator, caller: Caller, ioasId: number, n: number): void {
  const CHUNK = 10_000;
  for (let i = 0; i < n; i += CHUNK) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + CHUNK); j++) batch.push({ iova: iovaOf(j), length: LENGTH, userAddress: USER + iovaOf(j), read: true, write: true });
    allocator.mapBatch(caller, ioasId, batch);
  }
}

/** `count` random positions among N live mappings, as iovas, precomputed so the loop times only the allocator. */
export function randomIovas(n: number, count: number, seed: number): bigint[] {
  const next = rng(seed);
  const out = new Array<bigint>(count);
  for (let k = 0; k < count; k++) out[k] = iovaOf(Math.floor(next() * n));
  return out;
}

/** One op: unmap a random live mapping, map it back at the same iova. Answers seconds for all. */
export function fixedLoop(allocator: Allocator, caller: Caller, ioasId: number, iovas: readonly bigint[]): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < iovas.length; k++) {
    const iova = iovas[k]!;
    allocator.unmap(caller, ioasId, { iova, length: LENGTH });
    allocator.map(caller, ioasId, { iova, length: LENGTH, userAddress: USER + iova, read: true, write: true });
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * One op: map AUTO_LENGTH bytes at an allocated iova, then unmap it. No hole between the N mappings
 * is big enough, so the first fit lies above all of them: the search has to get past every hole,
 * which the gap-augmented index does in O(log n) (a linear scan would be O(n)).
 */
export function autoTopLoop(allocator: Allocator, caller: Caller, ioasId: number, n: number, ops: number): number {
  const expected = iovaOf(n);
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < ops; k++) {
    const m = allocator.map(caller, ioasId, { length: AUTO_LENGTH, userAddress: USER, read: true, write: true });
    if (m.iova !== expected) throw new Error(`auto map landed at 0x${m.iova.toString(16)}, expected 0x${expected.toString(16)}`);
    allocator.unmap(caller, ioasId, { iova: m.iova, length: AUTO_LENGTH });
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * One op at a random position: unmap mapping i (its hole grows to 0x3000, the only one below the top
 * where AUTO_LENGTH fits), map AUTO_LENGTH at an allocated iova (it must land exactly there), unmap
 * it, map mapping i back. Four allocator calls; the search descends to a random leaf.
 */
export function autoHoleLoop(allocator: Allocator, caller: Caller, ioasId: number, iovas: readonly bigint[]): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < iovas.length; k++) {
    const iova = iovas[k]!;
    allocator.unmap(caller, ioasId, { iova, length: LENGTH });
    const m = allocator.map(caller, ioasId, { length: AUTO_LENGTH, userAddress: USER, read: true, write: true });
    if (m.iova !== iova) throw new Error(`auto map landed at 0x${m.iova.toString(16)}, expected the hole at 0x${iova.toString(16)}`);
    allocator.unmap(caller, ioasId, { iova, length: AUTO_LENGTH });
    allocator.map(caller, ioasId, { iova, length: LENGTH, userAddress: USER + iova, read: true, write: true });
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
