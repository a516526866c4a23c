import { U64_MAX } from './u64.js';
import { compareSplit, DELTA_CODES, deltaOf, EXACT, joinU64, unzigzag, zigzag } from './u64-float.js';

/**
 * The ordered, non-overlapping areas of one I/O address space, in a B+tree keyed by start address.
 *
 * Flat nodes: a leaf is one Float64Array, no object per area. Its first part is the column of start
 * addresses (what a search reads: 64 keys in 8 cache lines), the rest the rows [last, gap, meta,
 * ...payload] side by side. Each u64 is kept as the float64 nearest to it, its small correction
 * packed into `meta` (u64-float.ts), so addresses below 2^53 never touch BigInt and the exact value
 * is always there. The payload and 16 bits of `meta` belong to a {@link RowCodec}, which turns an
 * item into columns and back: the tree hands out items materialized on read, so a million areas are
 * a few thousand typed arrays instead of millions of objects for the collector to trace.
 *
 * Lowest-fitting-hole search (IOVA auto-allocation) is O(log n): every row keeps the size of the hole
 * just below it ("gap", as the float64 nearest to it) and every node the largest gap beneath it.
 * Rounding is monotonic, so `gap >= len` implies `Number(gap) >= Number(len)` and pruning on the float
 * never skips a real fit; candidates are then checked exactly.
 */
export interface Span {
  readonly iova: bigint;
  readonly last: bigint;
}

export interface Hole {
  start: bigint;
  last: bigint;
}

/** How a tree keeps the rest of an item beside the iova and last it indexes. */
export interface RowCodec<T extends Span> {
  /** float64 columns per row after the tree's own {@link ROW_HEAD}. */
  readonly width: number;
  /**
   * Writes the item's columns at row[at + ROW_HEAD ...] and answers up to 16 bits kept in the row's
   * meta. `bulk`: the item comes from a restart's bulk load rather than a single insert.
   */
  write(item: T, row: Float64Array, at: number, bulk: boolean): number;
  /**
   * The item of the row at `at`, given its exact iova and last, its 16 bits, and its length as a
   * number when that is exact (below 2^53), else -1.
   */
  read(iova: bigint, last: bigint, bits: number, row: Float64Array, at: number, length: number): T;
  /** Told about each item the tree removed (as materialized by read). */
  removed?(item: T): void;
  /** Changes whenever read could answer differently for an unchanged row (a materialized item is reused while it stays). */
  readonly version?: () => number;
}

/** Row columns kept by the tree itself (start addresses and gaps live in the leaf's own columns). */
const R_LAST = 0;
const R_META = 1;
export const ROW_HEAD = 2;

/** meta = codec bits + BITS * (zigzag(iova delta) + DELTA_CODES * zigzag(last delta)): 0 deltas keep it below BITS. */
const BITS = 0x10000;

function metaOf(bits: number, dIova: number, dLast: number): number {
  return dIova === 0 && dLast === 0 ? bits : bits + BITS * (zigzag(dIova) + DELTA_CODES * zigzag(dLast));
}

function iovaDelta(meta: number): number {
  return meta < BITS ? 0 : unzigzag(Math.floor(meta / BITS) % DELTA_CODES);
}

function lastDelta(meta: number): number {
  return meta < BITS ? 0 : unzigzag(Math.floor(meta / BITS / DELTA_CODES));
}

/** Number(iova - prevLast - 1): the float64 of the hole below a row, given its predecessor's last (-1 for none). */
function gapNum(iA: number, iD: number, pA: number, pD: number): number {
  // Below 2^53 both deltas are 0 and the subtraction is exact.
  if (iA < EXACT && pA < EXACT) return iA - pA - 1;
  return Number(joinU64(iA, iD) - joinU64(pA, pD) - 1n);
}

/** Items as {iova, last} only (no payload). */
export const SPAN_ROWS: RowCodec<Span> = {
  width: 0,
  write: () => 0,
  read: (iova, last) => ({ iova, last }),
};

const LEAF_CAP = 64;
const BRANCH_CAP = 64;
/** Leaves and branches hold one spare entry: a full node takes the insert, then splits. */
const KEYS = LEAF_CAP + 1;
const SLOTS = BRANCH_CAP + 1;
/**
 * A node rebalances only below a quarter full: at half, a tree built by ascending inserts would merge
 * on each remove and split on the next insert.
 */
const LEAF_MIN = LEAF_CAP / 4;
const BRANCH_MIN = BRANCH_CAP / 4;
/**
 * A node that overflows at the far end of the tree (ascending or descending inserts, the common
 * pattern of a batch) keeps this many entries so the tree fills to 7/8 instead of 1/2; a bulk load
 * fills nodes the same way.
 */
const LEAF_FILL = LEAF_CAP - 8;
const BRANCH_FILL = BRANCH_CAP - 8;

class Leaf {
  readonly leaf = true;
  n = 0;
  maxGap = -1;
  parent: Branch | null = null;
  /** Index in the parent. */
  pi = 0;
  prev: Leaf | null = null;
  next: Leaf | null = null;
  /** [KEYS start addresses][KEYS gaps][KEYS rows of `rowStride`], all float64. */
  readonly v: Float64Array;
  constructor(rowStride: number) {
    this.v = new Float64Array(KEYS * (2 + rowStride));
  }
}

class Branch {
  readonly leaf = false;
  n = 0;
  maxGap = -1;
  parent: Branch | null = null;
  pi = 0;
  /** Per child: [SLOTS smallest iova (float64)][SLOTS its correction][SLOTS largest gap]. */
  readonly k = new Float64Array(3 * SLOTS);
  readonly kids: Node[] = [];
}

/** Leaf columns: the gaps, then the rows. */
const GAPS = KEYS;
const ROWS = 2 * KEYS;
const B_DELTA = SLOTS;
const B_GAP = 2 * SLOTS;

type Node = Leaf | Branch;

export class IovaTree<T extends Span> {
  private root: Node;
  private count = 0;
  /** float64s per row (after the key column). */
  private readonly rs: number;
  /** The key being searched, split (set by setKey). */
  private kA = 0;
  private kD = 0;
  /** A row found by a seek. */
  private hitLeaf: Leaf | null = null;
  private hitIdx = -1;
  /** A predecessor's last, split (set by predLast). */
  private pA = -1;
  private pD = 0;
  /** Bumped by every change; the last materialized item is reused while it and the codec's version hold. */
  private stamp = 0;
  private cacheLeaf: Leaf | null = null;
  private cacheIdx = -1;
  private cacheStamp = -1;
  private cacheVersion = -1;
  private cacheItem: T | undefined;

  constructor(readonly codec: RowCodec<T> = SPAN_ROWS as unknown as RowCodec<T>) {
    this.rs = ROW_HEAD + codec.width;
    this.root = new Leaf(this.rs);
  }

  get size(): number {
    return this.count;
  }

  /** Builds a tree from areas sorted by iova and not overlapping, in O(n) (restart from the database). */
  static fromSorted(sorted: readonly Span[]): IovaTree<Span>;
  static fromSorted<T extends Span>(sorted: readonly T[], codec: RowCodec<T>): IovaTree<T>;
  static fromSorted<T extends Span>(sorted: readonly T[], codec?: RowCodec<T>): IovaTree<T> {
    const tree = new IovaTree<T>(codec);
    tree.load(sorted);
    return tree;
  }

  /** Replaces the content with areas sorted by iova and not overlapping, in O(n). */
  load(sorted: readonly T[]): void {
    this.stamp++;
    const rs = this.rs;
    const n = sorted.length;
    this.count = n;
    if (n === 0) {
      this.root = new Leaf(rs);
      return;
    }
    let level: Node[] = [];
    const leaves = Math.ceil(n / LEAF_FILL);
    let pA = -1;
    let pD = 0;
    let prev: Leaf | null = null;
    let prevLast = -1n;
    for (let l = 0, idx = 0; l < leaves; l++) {
      const leaf = new Leaf(rs);
      const v = leaf.v;
      const take = Math.floor((n * (l + 1)) / leaves) - Math.floor((n * l) / leaves);
      for (let j = 0; j < take; j++, idx++) {
        const item = sorted[idx]!;
        if (item.iova <= prevLast || item.last < item.iova) throw new Error(`IovaTree.load: areas out of order or overlapping at 0x${item.iova.toString(16)}`);
        prevLast = item.last;
        this.writeRow(v, j, item, true);
        const at = ROWS + j * rs;
        const meta = v[at + R_META]!;
        v[GAPS + j] = gapNum(v[j]!, iovaDelta(meta), pA, pD);
        pA = v[at + R_LAST]!;
        pD = lastDelta(meta);
      }
      leaf.n = take;
      leaf.maxGap = this.leafMax(leaf);
      leaf.prev = prev;
      if (prev) prev.next = leaf;
      prev = leaf;
      level.push(leaf);
    }
    while (level.length > 1) {
      const next: Node[] = [];
      const groups = Math.ceil(level.length / BRANCH_FILL);
      for (let g = 0, idx = 0; g < groups; g++) {
        const b = new Branch();
        const take = Math.floor((level.length * (g + 1)) / groups) - Math.floor((level.length * g) / groups);
        for (let j = 0; j < take; j++) setChild(b, j, level[idx++]!);
        b.n = take;
        b.maxGap = branchMax(b);
        next.push(b);
      }
      level = next;
    }
    this.root = level[0]!;
    this.root.parent = null;
  }

  /** The area containing address `a`, if any. */
  find(a: bigint): T | undefined {
    this.setKey(a);
    if (!this.seekFloor() || this.hitLastCompare(this.kA, this.kD) < 0) return undefined;
    return this.rowAt(this.hitLeaf!, this.hitIdx);
  }

  /** The area with the greatest start <= a. */
  floor(a: bigint): T | undefined {
    this.setKey(a);
    return this.seekFloor() ? this.rowAt(this.hitLeaf!, this.hitIdx) : undefined;
  }

  /** True when any area meets [start, last]. */
  overlaps(start: bigint, last: bigint): boolean {
    this.setKey(last);
    if (!this.seekFloor()) return false;
    const sA = Number(start);
    return this.hitLastCompare(sA, deltaOf(start, sA)) >= 0;
  }

  /** Areas meeting [start, last], in address order. */
  *meeting(start: bigint, last: bigint): Generator<T> {
    for (const area of this.from(start, true)) {
      if (area.iova > last) return;
      yield area;
    }
  }

  /**
   * The areas meeting [start, last] as an array. When the area below `last` starts at or before
   * `start` it is the only candidate (areas do not overlap), which answers the common case of an
   * unmap of one whole mapping with a single descent.
   */
  meetingList(start: bigint, last: bigint): T[] {
    this.setKey(last);
    if (!this.seekFloor()) return [];
    const sA = Number(start);
    const sD = deltaOf(start, sA);
    if (this.hitLastCompare(sA, sD) < 0) return [];
    const leaf = this.hitLeaf!;
    const i = this.hitIdx;
    if (compareSplit(leaf.v[i]!, iovaDelta(leaf.v[ROWS + i * this.rs + R_META]!), sA, sD) <= 0) return [this.rowAt(leaf, i)];
    return [...this.meeting(start, last)];
  }

  /**
   * Areas in address order starting with the first one at or after `start` (or, with
   * `includeContaining`, the one containing `start`).
   */
  *from(start = 0n, includeContaining = false): Generator<T> {
    this.setKey(start);
    let leaf: Leaf | null = this.descend();
    let i = this.leafUB(leaf);
    // The descent picks the leaf whose first start is <= `start` (or the leftmost leaf), so only row
    // i - 1 can start at or contain `start`.
    if (i > 0) {
      const meta = leaf.v[ROWS + (i - 1) * this.rs + R_META]!;
      if ((leaf.v[i - 1] === this.kA && iovaDelta(meta) === this.kD) || (includeContaining && this.lastCompare(leaf, i - 1, this.kA, this.kD) >= 0)) i--;
    }
    for (; leaf; leaf = leaf.next, i = 0) {
      while (i < leaf.n) yield this.rowAt(leaf, i++);
    }
  }

  /** Inserts an area; the caller has checked that it overlaps nothing. */
  insert(area: T): void {
    this.stamp++;
    this.setKey(area.iova);
    const leaf = this.descend();
    const i = this.leafUB(leaf);
    const v = leaf.v;
    const n = leaf.n;
    if (i < n) this.moveEntries(leaf, i, leaf, i + 1, n - i);
    this.writeRow(v, i, area, false);
    leaf.n = n + 1;
    this.count++;
    const gNew = this.refreshGap(leaf, i);
    if (i === 0) this.fixMin(leaf);
    // The area after the new one now has a smaller hole below it; maxima only shrink there, unless
    // that hole was the largest.
    let max = gNew > leaf.maxGap ? gNew : leaf.maxGap;
    if (i + 1 < leaf.n) {
      const gOld = v[GAPS + i + 1]!;
      this.refreshGap(leaf, i + 1);
      if (gOld === leaf.maxGap) max = this.leafMax(leaf);
    } else if (leaf.next) {
      const next = leaf.next;
      const gOld = next.v[GAPS]!;
      this.refreshGap(next, 0);
      if (gOld === next.maxGap) this.setMax(next, this.leafMax(next));
    }
    if (leaf.n > LEAF_CAP) this.splitLeaf(leaf, i);
    else this.setMax(leaf, max);
  }

  /** Removes the area starting at `iova`; returns it, or undefined when there is none. */
  remove(iova: bigint): T | undefined {
    this.setKey(iova);
    const leaf = this.descend();
    const i = this.leafUB(leaf) - 1;
    if (i < 0) return undefined;
    const rs = this.rs;
    const v = leaf.v;
    const at = ROWS + i * rs;
    if (v[i] !== this.kA || iovaDelta(v[at + R_META]!) !== this.kD) return undefined;
    const area = this.rowAt(leaf, i);
    this.stamp++;
    const gRemoved = v[GAPS + i]!;
    const n = leaf.n - 1;
    this.moveEntries(leaf, i + 1, leaf, i, n - i);
    leaf.n = n;
    this.count--;
    if (i === 0 && n > 0) this.fixMin(leaf);
    // The next area's hole grows to reach down to the area before the removed one: it covers both
    // holes, so the maximum can only grow, unless the follower is in the next leaf.
    if (i < n) {
      const g = this.refreshGap(leaf, i);
      this.setMax(leaf, g > leaf.maxGap ? g : leaf.maxGap);
    } else {
      if (gRemoved === leaf.maxGap) this.setMax(leaf, this.leafMax(leaf));
      const next = leaf.next;
      if (next) {
        const g = this.refreshGap(next, 0);
        if (g > next.maxGap) this.setMax(next, g);
      }
    }
    if (n < LEAF_MIN && leaf.parent) this.rebalance(leaf);
    this.codec.removed?.(area);
    return area;
  }

  /**
   * The lowest hole part inside [windowStart, windowLast] where `fits` accepts a placement, trying
   * only holes of at least `minSize` bytes beyond the first. `fits` receives the clipped hole and
   * answers the placement's start, or undefined.
   */
  firstFit(windowStart: bigint, windowLast: bigint, minSize: bigint, fits: (hole: Hole) => bigint | undefined): bigint | undefined {
    // The hole containing windowStart (or starting right after the area containing it).
    let holeStart = windowStart;
    this.setKey(windowStart);
    if (this.seekFloor() && this.hitLastCompare(this.kA, this.kD) >= 0) {
      const last = this.hitLast();
      if (last === U64_MAX) return undefined;
      holeStart = last + 1n;
    }
    for (;;) {
      if (holeStart > windowLast) return undefined;
      // The first area at or after holeStart bounds the hole.
      const found = this.seekAtOrAfter(holeStart);
      const nextIova = found ? joinU64(this.hitLeaf!.v[this.hitIdx]!, iovaDelta(this.hitLeaf!.v[ROWS + this.hitIdx * this.rs + R_META]!)) : undefined;
      const holeLast = nextIova !== undefined ? nextIova - 1n : U64_MAX;
      if (holeLast >= holeStart) {
        const at = fits({ start: holeStart, last: holeLast < windowLast ? holeLast : windowLast });
        if (at !== undefined) return at;
      }
      if (nextIova === undefined || this.hitLast() >= windowLast) return undefined;
      // Jump to the next hole big enough to matter: below the first area after `next` with a gap >= minSize.
      if (this.seekGap(nextIova, minSize)) {
        this.predLast(this.hitLeaf!, this.hitIdx);
        holeStart = joinU64(this.pA, this.pD) + 1n;
      } else {
        // Only the hole above the last area is left; it is worth a look only if it is big enough.
        let leaf = this.root;
        while (!leaf.leaf) leaf = leaf.kids[leaf.n - 1]!;
        this.hitLeaf = leaf;
        this.hitIdx = leaf.n - 1;
        const last = this.hitLast();
        if (last === U64_MAX || U64_MAX - last < minSize) return undefined;
        holeStart = last + 1n;
      }
    }
  }

  /** Checks the structure (tests only): order, no overlap, gaps and maxima, keys, links, counts. */
  checkInvariants(): void {
    const rs = this.rs;
    let prevLast = -1n;
    let n = 0;
    let prevLeaf: Leaf | null = null;
    const depths = new Set<number>();
    const visit = (node: Node, depth: number): bigint | undefined => {
      if (node.leaf) {
        depths.add(depth);
        if (node.n === 0 && node !== this.root) throw new Error('empty leaf');
        if (node.n > LEAF_CAP) throw new Error('overfull leaf');
        if (node.prev !== prevLeaf) throw new Error('leaf prev link');
        if (prevLeaf && prevLeaf.next !== node) throw new Error('leaf next link');
        prevLeaf = node;
        let max = -1;
        for (let i = 0; i < node.n; i++) {
          const at = ROWS + i * rs;
          const meta = node.v[at + R_META]!;
          const iova = joinU64(node.v[i]!, iovaDelta(meta));
          const last = joinU64(node.v[at + R_LAST]!, lastDelta(meta));
          if (Number(iova) !== node.v[i] || Number(last) !== node.v[at + R_LAST]) throw new Error(`approx at 0x${iova.toString(16)}`);
          if (iova <= prevLast || last < iova || last > U64_MAX) throw new Error(`order/overlap at 0x${iova.toString(16)}`);
          if (node.v[GAPS + i] !== Number(iova - prevLast - 1n)) throw new Error(`gap at 0x${iova.toString(16)}`);
          max = Math.max(max, node.v[GAPS + i]!);
          prevLast = last;
          n++;
        }
        if (node.maxGap !== max) throw new Error('leaf maxGap');
        return node.n > 0 ? joinU64(node.v[0]!, iovaDelta(node.v[ROWS + R_META]!)) : undefined;
      }
      if (node.n !== node.kids.length || node.n === 0 || node.n > BRANCH_CAP) throw new Error('branch size');
      if (node === this.root && node.n < 2) throw new Error('root with one child');
      let min: bigint | undefined;
      let max = -1;
      node.kids.forEach((c, i) => {
        if (c.parent !== node || c.pi !== i) throw new Error('parent link');
        const cmin = visit(c, depth + 1);
        if (cmin === undefined || joinU64(node.k[i]!, node.k[B_DELTA + i]!) !== cmin) throw new Error('branch key');
        if (node.k[B_GAP + i] !== c.maxGap) throw new Error('branch gap');
        max = Math.max(max, c.maxGap);
        if (i === 0) min = cmin;
      });
      if (node.maxGap !== max) throw new Error('branch maxGap');
      return min;
    };
    if (this.root.parent !== null) throw new Error('root parent');
    visit(this.root, 0);
    if (prevLeaf !== null && (prevLeaf as Leaf).next !== null) throw new Error('last leaf next link');
    if (depths.size > 1) throw new Error('unbalanced');
    if (n !== this.count) throw new Error('count');
  }

  // ---- rows ------------------------------------------------------------------------------------

  private setKey(k: bigint): void {
    const a = Number(k);
    this.kA = a;
    this.kD = deltaOf(k, a);
  }

  /** Writes item as entry i of a leaf (key and row; the gap is the caller's). */
  private writeRow(v: Float64Array, i: number, item: T, bulk: boolean): void {
    const at = ROWS + i * this.rs;
    const iA = Number(item.iova);
    const lA = Number(item.last);
    v[i] = iA;
    v[at + R_LAST] = lA;
    const bits = this.codec.write(item, v, at, bulk);
    v[at + R_META] = metaOf(bits, deltaOf(item.iova, iA), deltaOf(item.last, lA));
  }

  private rowAt(leaf: Leaf, i: number): T {
    const version = this.codec.version ? this.codec.version() : 0;
    if (this.cacheLeaf === leaf && this.cacheIdx === i && this.cacheStamp === this.stamp && this.cacheVersion === version) return this.cacheItem!;
    const v = leaf.v;
    const at = ROWS + i * this.rs;
    const meta = v[at + R_META]!;
    const iA = v[i]!;
    const lA = v[at + R_LAST]!;
    const item =
      meta < BITS
        ? this.codec.read(BigInt(iA), BigInt(lA), meta, v, at, lA < EXACT ? lA - iA + 1 : -1)
        : this.codec.read(joinU64(iA, iovaDelta(meta)), joinU64(lA, lastDelta(meta)), meta % BITS, v, at, -1);
    this.cacheLeaf = leaf;
    this.cacheIdx = i;
    this.cacheStamp = this.stamp;
    this.cacheVersion = version;
    this.cacheItem = item;
    return item;
  }

  /** Row i's last compared with (a, d). */
  private lastCompare(leaf: Leaf, i: number, a: number, d: number): number {
    const at = ROWS + i * this.rs;
    return compareSplit(leaf.v[at + R_LAST]!, lastDelta(leaf.v[at + R_META]!), a, d);
  }

  private hitLastCompare(a: number, d: number): number {
    return this.lastCompare(this.hitLeaf!, this.hitIdx, a, d);
  }

  private hitLast(): bigint {
    const at = ROWS + this.hitIdx * this.rs;
    const v = this.hitLeaf!.v;
    return joinU64(v[at + R_LAST]!, lastDelta(v[at + R_META]!));
  }

  /** Sets pA/pD to the last address of the row before (leaf, i), or -1 when there is none. */
  private predLast(leaf: Leaf, i: number): void {
    let l: Leaf | null = leaf;
    let j = i - 1;
    while (j < 0) {
      l = l.prev;
      if (!l) {
        this.pA = -1;
        this.pD = 0;
        return;
      }
      j = l.n - 1;
    }
    const at = ROWS + j * this.rs;
    this.pA = l.v[at + R_LAST]!;
    this.pD = lastDelta(l.v[at + R_META]!);
  }

  /** Recomputes (and answers) the gap of row i from its predecessor; maxima are the caller's business. */
  private refreshGap(leaf: Leaf, i: number): number {
    this.predLast(leaf, i);
    const v = leaf.v;
    const at = ROWS + i * this.rs;
    return (v[GAPS + i] = gapNum(v[i]!, iovaDelta(v[at + R_META]!), this.pA, this.pD));
  }

  // ---- search ----------------------------------------------------------------------------------

  /** First child whose smallest key is > the search key. */
  private branchUB(b: Branch): number {
    const k = b.k;
    const kA = this.kA;
    const kD = this.kD;
    let lo = 0;
    let hi = b.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = k[mid]!;
      if (x < kA || (x === kA && k[B_DELTA + mid]! <= kD)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First row whose iova is > the search key. */
  private leafUB(leaf: Leaf): number {
    const v = leaf.v;
    const kA = this.kA;
    const kD = this.kD;
    let lo = 0;
    let hi = leaf.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = v[mid]!;
      if (x < kA || (x === kA && (kA < EXACT || iovaDelta(v[ROWS + mid * this.rs + R_META]!) <= kD))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The leaf where the search key belongs: the last one whose first iova is <= the key, or the leftmost. */
  private descend(): Leaf {
    let node = this.root;
    while (!node.leaf) {
      const i = this.branchUB(node);
      node = node.kids[i > 0 ? i - 1 : 0]!;
    }
    return node;
  }

  /** The row with the greatest iova <= the search key, into hitLeaf/hitIdx; false when none. */
  private seekFloor(): boolean {
    const leaf = this.descend();
    const i = this.leafUB(leaf) - 1;
    // Branch keys are exact smallest keys, so only the leftmost leaf can have nothing <= the key.
    if (i < 0) return false;
    this.hitLeaf = leaf;
    this.hitIdx = i;
    return true;
  }

  /** The first row with iova >= a, into hitLeaf/hitIdx; false when none. */
  private seekAtOrAfter(a: bigint): boolean {
    this.setKey(a);
    const leaf = this.descend();
    let i = this.leafUB(leaf);
    if (i > 0 && leaf.v[i - 1] === this.kA && iovaDelta(leaf.v[ROWS + (i - 1) * this.rs + R_META]!) === this.kD) i--;
    if (i < leaf.n) {
      this.hitLeaf = leaf;
      this.hitIdx = i;
      return true;
    }
    if (!leaf.next) return false;
    this.hitLeaf = leaf.next;
    this.hitIdx = 0;
    return true;
  }

  /** The first row with iova > after whose gap is at least minSize, into hitLeaf/hitIdx. */
  private seekGap(after: bigint, minSize: bigint): boolean {
    this.setKey(after);
    return this.searchGap(this.root, Number(minSize), minSize);
  }

  private searchGap(node: Node, need: number, minSize: bigint): boolean {
    if (node.maxGap < need) return false;
    if (node.leaf) {
      const v = node.v;
      for (let i = this.leafUB(node); i < node.n; i++) {
        const g = v[GAPS + i]!;
        if (g < need) continue;
        // Both below 2^53: the floats are the exact values. Otherwise settle it exactly.
        if (!(g < EXACT && need < EXACT)) {
          this.predLast(node, i);
          const exact = joinU64(v[i]!, iovaDelta(v[ROWS + i * this.rs + R_META]!)) - joinU64(this.pA, this.pD) - 1n;
          if (exact < minSize) continue;
        }
        this.hitLeaf = node;
        this.hitIdx = i;
        return true;
      }
      return false;
    }
    const first = this.branchUB(node);
    for (let c = first > 0 ? first - 1 : 0; c < node.n; c++) {
      if (node.k[B_GAP + c]! >= need && this.searchGap(node.kids[c]!, need, minSize)) return true;
    }
    return false;
  }

  // ---- structure -------------------------------------------------------------------------------

  private leafMax(leaf: Leaf): number {
    const v = leaf.v;
    let m = -1;
    for (let i = GAPS, end = GAPS + leaf.n; i < end; i++) if (v[i]! > m) m = v[i]!;
    return m;
  }

  /** Sets a node's largest gap and carries the change up as far as it changes anything. */
  private setMax(node: Node, m: number): void {
    for (let c: Node = node; ; ) {
      if (c.maxGap === m) return;
      c.maxGap = m;
      const p = c.parent;
      if (!p) return;
      const old = p.k[B_GAP + c.pi]!;
      p.k[B_GAP + c.pi] = m;
      if (m >= p.maxGap) {
        // m is the parent's new largest (or equal to it: then nothing changes above).
      } else if (old === p.maxGap) {
        m = branchMax(p); // the largest shrank and may have been this one
      } else {
        return;
      }
      c = p;
    }
  }

  /** A node's smallest key changed: set it in the parents for which it is the first child. */
  private fixMin(node: Node): void {
    let a: number;
    let d: number;
    if (node.leaf) {
      a = node.v[0]!;
      d = iovaDelta(node.v[ROWS + R_META]!);
    } else {
      a = node.k[0]!;
      d = node.k[B_DELTA]!;
    }
    for (let c: Node = node; c.parent; c = c.parent) {
      c.parent.k[c.pi] = a;
      c.parent.k[B_DELTA + c.pi] = d;
      if (c.pi !== 0) return;
    }
  }

  private splitLeaf(leaf: Leaf, insertedAt: number): void {
    const n = leaf.n;
    let cut = n >> 1;
    if (!leaf.next && insertedAt === n - 1) cut = LEAF_FILL;
    else if (!leaf.prev && insertedAt === 0) cut = n - LEAF_FILL;
    const right = new Leaf(this.rs);
    this.moveEntries(leaf, cut, right, 0, n - cut);
    right.n = n - cut;
    leaf.n = cut;
    right.next = leaf.next;
    if (right.next) right.next.prev = right;
    right.prev = leaf;
    leaf.next = right;
    leaf.maxGap = this.leafMax(leaf);
    right.maxGap = this.leafMax(right);
    this.addSibling(leaf, right);
  }

  private splitBranch(b: Branch, insertedAt: number): void {
    const n = b.n;
    let cut = n >> 1;
    if (insertedAt === n - 1 && isRightmost(b)) cut = BRANCH_FILL;
    else if (insertedAt === 0 && isLeftmost(b)) cut = n - BRANCH_FILL;
    const right = new Branch();
    const moved = b.kids.splice(cut);
    for (let j = 0; j < moved.length; j++) setChild(right, j, moved[j]!);
    right.n = moved.length;
    b.n = cut;
    b.maxGap = branchMax(b);
    right.maxGap = branchMax(right);
    this.addSibling(b, right);
  }

  /** Inserts `right` just after `node` in node's parent (a new root when there is none). */
  private addSibling(node: Node, right: Node): void {
    const p = node.parent;
    if (!p) {
      const root = new Branch();
      setChild(root, 0, node);
      setChild(root, 1, right);
      root.n = 2;
      root.maxGap = branchMax(root);
      this.root = root;
      return;
    }
    const at = node.pi + 1;
    for (const base of [0, B_DELTA, B_GAP]) p.k.copyWithin(base + at + 1, base + at, base + p.n);
    p.kids.splice(at, 0, right);
    p.n++;
    for (let j = at + 1; j < p.n; j++) p.kids[j]!.pi = j;
    setChild(p, at, right);
    p.k[B_GAP + node.pi] = node.maxGap;
    if (p.n > BRANCH_CAP) this.splitBranch(p, at);
    else this.refreshMax(p);
  }

  /** Recomputes a branch's maxGap from its children's and carries a change up. */
  private refreshMax(b: Branch): void {
    this.setMax(b, branchMax(b));
  }

  /** Merges an underfull node with a neighbour, or moves rows/children over from it. */
  private rebalance(node: Node): void {
    const p = node.parent!;
    const left = node.pi > 0 ? p.kids[node.pi - 1]! : node;
    const right = node.pi > 0 ? node : p.kids[node.pi + 1]!;
    if (left.leaf !== right.leaf) throw new Error('IovaTree: unbalanced siblings');
    if (left.leaf) this.moveRows(left, right as Leaf);
    else moveKids(left, right as Branch);
    this.fixMin(left);
    if (right.n > 0) this.fixMin(right);
    p.k[B_GAP + left.pi] = left.maxGap;
    if (right.n === 0) this.removeChild(p, right.pi);
    else p.k[B_GAP + right.pi] = right.maxGap;
    this.refreshMax(p);
    if (p === this.root) {
      if (p.n === 1) {
        this.root = p.kids[0]!;
        this.root.parent = null;
        this.root.pi = 0;
      }
    } else if (p.n < BRANCH_MIN) {
      this.rebalance(p);
    }
  }

  /** Adjacent leaves: all rows into `left` when they fit with room to spare, else half each. */
  private moveRows(left: Leaf, right: Leaf): void {
    const total = left.n + right.n;
    const keep = total <= LEAF_CAP - LEAF_MIN ? total : total >> 1;
    if (keep > left.n) {
      const k = keep - left.n;
      this.moveEntries(right, 0, left, left.n, k);
      this.moveEntries(right, k, right, 0, right.n - k);
      left.n += k;
      right.n -= k;
    } else if (keep < left.n) {
      const k = left.n - keep;
      this.moveEntries(right, 0, right, k, right.n);
      this.moveEntries(left, keep, right, 0, k);
      left.n -= k;
      right.n += k;
    }
    if (right.n === 0) {
      left.next = right.next;
      if (right.next) right.next.prev = left;
    }
    left.maxGap = this.leafMax(left);
    right.maxGap = this.leafMax(right);
  }

  /** Copies `count` entries (key, gap, row) from src[from] to dst[to]; the ranges may overlap in one leaf. */
  private moveEntries(src: Leaf, from: number, dst: Leaf, to: number, count: number): void {
    if (count <= 0) return;
    const rs = this.rs;
    if (src === dst) {
      const v = src.v;
      v.copyWithin(to, from, from + count);
      v.copyWithin(GAPS + to, GAPS + from, GAPS + from + count);
      v.copyWithin(ROWS + to * rs, ROWS + from * rs, ROWS + (from + count) * rs);
      return;
    }
    dst.v.set(src.v.subarray(from, from + count), to);
    dst.v.set(src.v.subarray(GAPS + from, GAPS + from + count), GAPS + to);
    dst.v.set(src.v.subarray(ROWS + from * rs, ROWS + (from + count) * rs), ROWS + to * rs);
  }

  /** Drops child i of b (its keys, gap and link). */
  private removeChild(b: Branch, i: number): void {
    for (const base of [0, B_DELTA, B_GAP]) b.k.copyWithin(base + i, base + i + 1, base + b.n);
    b.kids.splice(i, 1);
    b.n--;
    for (let j = i; j < b.n; j++) b.kids[j]!.pi = j;
    if (i === 0 && b.n > 0) this.fixMin(b);
  }
}

/** Puts `child` at index i of `b` (key, gap, links); b.n is the caller's. */
function setChild(b: Branch, i: number, child: Node): void {
  b.kids[i] = child;
  child.parent = b;
  child.pi = i;
  if (child.leaf) {
    b.k[i] = child.v[0]!;
    b.k[B_DELTA + i] = iovaDelta(child.v[ROWS + R_META]!);
  } else {
    b.k[i] = child.k[0]!;
    b.k[B_DELTA + i] = child.k[B_DELTA]!;
  }
  b.k[B_GAP + i] = child.maxGap;
}

/** Adjacent branches: all children into `left` when they fit with room to spare, else half each. */
function moveKids(left: Branch, right: Branch): void {
  const total = left.n + right.n;
  const keep = total <= BRANCH_CAP - BRANCH_MIN ? total : total >> 1;
  const all = [...left.kids, ...right.kids];
  left.kids.length = 0;
  right.kids.length = 0;
  for (let j = 0; j < keep; j++) setChild(left, j, all[j]!);
  for (let j = keep; j < total; j++) setChild(right, j - keep, all[j]!);
  left.n = keep;
  right.n = total - keep;
  left.maxGap = branchMax(left);
  right.maxGap = right.n > 0 ? branchMax(right) : -1;
}

function branchMax(b: Branch): number {
  let m = -1;
  for (let i = 0; i < b.n; i++) if (b.k[B_GAP + i]! > m) m = b.k[B_GAP + i]!;
  return m;
}

function isRightmost(node: Node): boolean {
  for (let c: Node = node; c.parent; c = c.parent) if (c.pi !== c.parent.n - 1) return false;
  return true;
}

function isLeftmost(node: Node): boolean {
  for (let c: Node = node; c.parent; c = c.parent) if (c.pi !== 0) return false;
  return true;
}
