import { fail } from './errors.js';
import type { UndoLog } from './tx.js';

/**
 * IOASIDs: ioas and hwpt ids from one ID space, lowest free first, 0 never (SPEC 4). Free ids are
 * kept as a min-heap of intervals: allocation takes the lowest interval's start, so the cost is
 * O(log f) for f free intervals however large the configured range is.
 */
export class IoasidAllocator {
  private readonly heap: [number, number][] = [];

  constructor(
    readonly min: number,
    readonly max: number,
    used: Iterable<number> = [],
  ) {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 1 || max < min) {
      throw new Error(`IOASID range ${min}-${max} is not a range of positive integers`);
    }
    let cursor = min;
    for (const id of [...used].filter((id) => id >= min && id <= max).sort((a, b) => a - b)) {
      if (id > cursor) this.push([cursor, id - 1]);
      cursor = Math.max(cursor, id + 1);
    }
    if (cursor <= max) this.push([cursor, max]);
  }

  allocate(): number {
    const top = this.heap[0];
    if (!top) fail('ENOSPC', `no free IOASID left in ${this.min}-${this.max}`);
    const id = top[0];
    if (top[0] === top[1]) this.pop();
    else top[0]++; // still the lowest interval: the heap order holds
    return id;
  }

  /** An id for a new object, given back if the change fails. */
  take(undo: UndoLog): number {
    const id = this.allocate();
    undo.push(() => this.free(id));
    return id;
  }

  /** Gives an id back with its object, taken again if the change fails. */
  release(id: number, undo: UndoLog): void {
    this.free(id);
    undo.push(() => this.reclaim(id));
  }

  /** Returns an id to the pool (a freed id is reused before higher ones). */
  free(id: number): void {
    this.push([id, id]);
  }

  /** Takes back a specific id just freed (undo of a failed change). */
  reclaim(id: number): void {
    const i = this.heap.findIndex(([s, l]) => s <= id && id <= l);
    if (i < 0) return;
    const [s, l] = this.heap[i]!;
    this.removeAt(i);
    if (s < id) this.push([s, id - 1]);
    if (id < l) this.push([id + 1, l]);
  }

  private push(v: [number, number]): void {
    const h = this.heap;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]![0] <= h[i]![0]) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): void {
    this.removeAt(0);
  }

  private removeAt(i: number): void {
    const h = this.heap;
    const last = h.pop()!;
    if (i >= h.length) return;
    h[i] = last;
    // Sift down, then up (removeAt may be called on any element).
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]![0] < h[m]![0]) m = l;
      if (r < h.length && h[r]![0] < h[m]![0]) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]![0] <= h[i]![0]) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
}
