import { U64_MAX } from './u64.js';
import { compareSplit, DELTA_CODES, deltaOf, EXACT, joinU64, unzigzag, zigzag } from './u64-float.js';

/**
 * The ordered, non-overlapping areas of one I/O address space, in a B+tree keyed by start address.
 *
 * Flat nodes: every node is a fixed-size run of float64s in a chunked pool (NodePool), named by an
 * integer id; there is no object per node and none per area. A million areas are a few dozen large
 * typed arrays, which the collector never traces and which take few TLB entries; a search reads a
 * handful of cache lines and no pointers.
 *
 * A leaf holds up to 31 areas: a column of start addresses in address order, a column naming each
 * area's row slot, and by slot: the rows [last, meta, ...payload], the gaps, and the largest gap of
 * each group of 8 slots (one cache line). Inserts and removes shift the two ordered columns only; a
 * row and its gap stay in their slot, and the slot a remove frees is the next one an insert takes, so
 * a remove followed by an insert nearby touches few and warm cache lines. Branches hold up to 63
 * children.
 *
 * At a million areas the cost is cache misses, not work. A descent into a big tree first reads the
 * cache lines of each node it will search, independently (touch: a branch's keys and children, a
 * leaf's columns), so the misses overlap instead of following the binary search one by one; and a
 * map or unmap, whose calls (find the area, check the overlap, remove, insert) all land on one leaf,
 * searches once: the tree remembers the last leaf and the key range it covers (the finger), the
 * entry it last handed out (a remove that follows an exact lookup takes it from there) and the place
 * an overlap check found free (an insert that follows it goes there). Counts, slots and node ids are
 * read as int32, so the index arithmetic of the hot loops stays integer.
 *
 * Each u64 is kept as the float64 nearest to it with its small correction packed into `meta`
 * (u64-float.ts), so addresses below 2^53 never touch BigInt and the exact value is always there.
 * The payload and 16 bits of `meta` belong to a {@link RowCodec}, which turns an item into columns
 * and back: items are materialized on read.
 *
 * Lowest-fitting-hole search (IOVA auto-allocation) is O(log n): every area keeps the size of the hole
 * just below it ("gap", as the float64 nearest to it) and every node the largest gap beneath it.
 * Rounding is monotonic, so `gap >= len` implies `Number(gap) >= Number(len)` and pruning on the float
 * never skips a real fit; candidates are then checked exactly. A leaf's own maxima are always exact;
 * the branches learn a leaf's new largest gap when a search (or a split or merge) needs them
 * (settleGaps), so a fixed map or unmap does not walk to the root and back.
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

/** Row columns kept by the tree itself (start addresses and gaps have their own columns). */
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

/** Number(iova - prevLast - 1): the float64 of the hole below an area, given its predecessor's last (-1 for none). */
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

// ---- node layout ---------------------------------------------------------------------------------

/**
 * Entries per node, one of them spare: a full node takes the insert, then splits. Leaves are small,
 * so an insert or remove shifts little; branches are wide, so the tree stays shallow.
 */
const L_SLOTS = 32;
const B_SLOTS = 64;
const L_CAP = L_SLOTS - 1;
const B_CAP = B_SLOTS - 1;
/** Gaps are summarized per group of 8 float64s: one cache line. */
const GROUP = 8;
const L_GROUPS = L_SLOTS / GROUP;
const B_GROUPS = B_SLOTS / GROUP;
/**
 * A node rebalances only below a quarter full: at half, a tree built by ascending inserts would merge
 * on each remove and split on the next insert.
 */
const L_MIN = L_CAP >> 2;
const B_MIN = B_CAP >> 2;
/**
 * A node that overflows at the far end of the tree (ascending or descending inserts, the common
 * pattern of a batch) keeps all but 7 entries, so the tree fills to about 7/8 instead of 1/2; a bulk
 * load fills nodes the same way.
 */
const L_FILL = L_CAP - 7;
const B_FILL = B_CAP - 7;
/** Trees smaller than this stay in the caches: a descent does not bother to prefetch. */
const PREFETCH_FROM = 1 << 15;

/** Header, both kinds: entry count, largest gap, parent branch id (-1: root), index in the parent. */
const H_N = 0;
const H_MAX = 1;
const H_PARENT = 2;
const H_PI = 3;
/** Leaves: neighbour leaf ids (-1: none). Branches: 1 when the children are leaves. */
const H_PREV = 4;
const H_NEXT = 5;
const H_LEAFKIDS = 4;
/** Leaves: 1 while the parent's copy of the leaf's largest gap is out of date (settleGaps). */
const H_STALE = 6;
const HEAD = 8;

/** Leaves: keys and slots by position; gaps (-1: free slot), group maxima and rows by slot. */
const L_KEY = HEAD;
const L_SLOT = L_KEY + L_SLOTS;
const L_GAP = L_SLOT + L_SLOTS;
const L_GRP = L_GAP + L_SLOTS;
const L_ROW = L_GRP + L_GROUPS;

/**
 * Branches: what a descent reads first (keys, children), then the key corrections (read on ties
 * only), the gaps and their group maxima (read by first-fit searches and when gaps settle).
 */
const B_KEY = HEAD;
const B_KID = B_KEY + B_SLOTS;
const B_DELTA = B_KID + B_SLOTS;
const B_GAP = B_DELTA + B_SLOTS;
const B_GRP = B_GAP + B_SLOTS;
const BRANCH_SIZE = B_GRP + B_GROUPS;

const CHUNK_BITS = 10;
const CHUNK_MASK = (1 << CHUNK_BITS) - 1;

/**
 * Fixed-size nodes in Float64Array chunks of 1, 2, 4, ... up to 1024 nodes, so a small tree stays
 * small and a big one is a few multi-megabyte arrays. Id = chunk << 10 | index.
 */
class NodePool {
  readonly chunks: Float64Array[] = [];
  private readonly free: number[] = [];
  constructor(readonly size: number) {}

  alloc(): number {
    let id = this.free.pop();
    if (id === undefined) {
      const c = this.chunks.length;
      const cap = 2 ** Math.min(c, CHUNK_BITS);
      this.chunks.push(new Float64Array(cap * this.size));
      for (let s = cap - 1; s >= 0; s--) this.free.push((c << CHUNK_BITS) | s);
      id = this.free.pop()!;
    }
    return id;
  }

  release(id: number): void {
    this.free.push(id);
  }

  get live(): number {
    let total = 0;
    for (let c = 0; c < this.chunks.length; c++) total += 2 ** Math.min(c, CHUNK_BITS);
    return total - this.free.length;
  }
}

/**
 * Reads one float64 in each cache line of a node region, all independent of each other, so that a
 * cold node's lines are fetched in parallel before the binary search walks them one after another
 * (JavaScript has no prefetch instruction; an out-of-order core overlaps independent loads).
 */
function touch(v: Float64Array, from: number, length: number): number {
  let sum = 0;
  for (let i = from, end = from + length; i < end; i += GROUP) sum += v[i]!;
  return sum;
}

/** Largest of a run of float64s (-1 when empty). */
function maxOf(v: Float64Array, from: number, to: number): number {
  let m = -1;
  for (let i = from; i < to; i++) if (v[i]! > m) m = v[i]!;
  return m;
}

/** Recomputes the group maxima of gaps >= `from` (of n; a leaf passes all its slots); answers the node's maximum. */
function regroup(v: Float64Array, gaps: number, groups: number, groupCount: number, from: number, n: number): number {
  for (let g = from >> 3; g < groupCount; g++) {
    const start = g * GROUP;
    v[groups + g] = start < n ? maxOf(v, gaps + start, gaps + Math.min(n, start + GROUP)) : -1;
  }
  return maxOf(v, groups, groups + groupCount);
}

/** Branch child j's largest gap becomes g; answers the branch's new maximum from its group maxima. */
function setChildGap(v: Float64Array, gaps: number, groups: number, j: number, g: number, n: number): number {
  const old = v[gaps + j]!;
  v[gaps + j] = g;
  const gi = groups + (j >> 3);
  const gm = v[gi]!;
  if (g >= gm) v[gi] = g;
  else if (old === gm) {
    const start = (j >> 3) * GROUP;
    v[gi] = maxOf(v, gaps + start, gaps + Math.min(n, start + GROUP));
  }
  return maxOf(v, groups, groups + B_GROUPS);
}

export class IovaTree<T extends Span> {
  private leaves: NodePool;
  private branches: NodePool;
  /** The pools' chunk arrays and leaf size, kept at hand for the hot paths. */
  private lchunks: Float64Array[];
  private bchunks: Float64Array[];
  private lsize: number;
  /** float64s per row. */
  private readonly rs: number;
  private root: number;
  /** Branch levels above the leaves (0: the root is a leaf). */
  private height = 0;
  private count = 0;
  /** The key being searched, split (set by setKey). */
  private kA = 0;
  private kD = 0;
  /** An entry found by a seek. */
  private hitLeaf = -1;
  private hitIdx = -1;
  /** A predecessor's last, split (set by predLast). */
  private pA = -1;
  private pD = 0;
  /** Bumped by every change; the last materialized item is reused while it and the codec's version hold. */
  private stamp = 0;
  private cacheLeaf = -1;
  private cacheIdx = -1;
  private cacheStamp = -1;
  private cacheVersion = -1;
  private cacheItem: T | undefined;
  /** Where an area starting at (freeA, freeD) goes, as overlaps() found it free, valid while the stamp holds. */
  private freeLeaf = -1;
  private freeIdx = -1;
  private freeStamp = -1;
  private freeA = 0;
  private freeD = 0;
  /**
   * The finger: the leaf the last descent reached and the smallest key of whatever follows it (the
   * fence). A key from the leaf's first one (or any, for the leftmost leaf) up to the fence belongs
   * there as long as no node split, merged or moved entries (`shape`): the operations of one map or
   * unmap, which all land on the same leaf, descend once.
   */
  private shape = 0;
  private fingerShape = -1;
  private fingerLeaf = -1;
  private fenceA = Infinity;
  private fenceD = 0;
  /** The last bigints turned into (float64, correction): a map or an unmap passes the same few many times. */
  private memoK0 = -1n;
  private memoA0 = -1;
  private memoD0 = 0;
  private memoK1 = -1n;
  private memoA1 = -1;
  private memoD1 = 0;
  /** Leaves whose largest gap changed since the branches last learnt it (settleGaps). */
  private readonly stale: number[] = [];
  /** Keeps the loads of touch() from being optimized away. */
  private sink = 0;

  constructor(readonly codec: RowCodec<T> = SPAN_ROWS as unknown as RowCodec<T>) {
    this.rs = ROW_HEAD + codec.width;
    this.leaves = new NodePool(L_ROW + L_SLOTS * this.rs);
    this.branches = new NodePool(BRANCH_SIZE);
    this.lchunks = this.leaves.chunks;
    this.bchunks = this.branches.chunks;
    this.lsize = this.leaves.size;
    this.root = this.newLeaf(-1, -1);
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
    const bulk = this.bulkLoad();
    for (let i = 0; i < sorted.length; i++) bulk.add(sorted[i]!);
    bulk.finish();
  }

  /**
   * Replaces the content with areas streamed in iova order, in O(n) (a restart): `add` each, then
   * `finish`. The tree must not be used in between. Streaming lets the caller drop each item at
   * once instead of holding a million of them in an array while the index is built.
   */
  bulkLoad(): { add(item: T): void; finish(): void } {
    this.stale.length = 0;
    this.stamp++;
    this.shape++;
    this.leaves = new NodePool(this.leaves.size);
    this.branches = new NodePool(BRANCH_SIZE);
    this.lchunks = this.leaves.chunks;
    this.bchunks = this.branches.chunks;
    this.height = 0;
    this.count = 0;
    // The last address so far, split: each entry's gap, and the order check.
    this.pA = -1;
    this.pD = 0;
    const leaves: number[] = [];
    let leaf = this.newLeaf(-1, -1);
    leaves.push(leaf);
    let filled = 0;
    const close = (): void => {
      const v = this.lv(leaf);
      const o = this.lo(leaf);
      v[o + H_N] = filled;
      v[o + H_MAX] = regroup(v, o + L_GAP, o + L_GRP, L_GROUPS, 0, L_SLOTS);
    };
    return {
      add: (item: T): void => {
        if (filled === L_FILL) {
          close();
          const next = this.newLeaf(leaf, -1);
          this.lv(leaf)[this.lo(leaf) + H_NEXT] = next;
          leaves.push(next);
          leaf = next;
          filled = 0;
        }
        this.loadEntry(this.lv(leaf), this.lo(leaf), filled++, item);
        this.count++;
      },
      finish: (): void => {
        close();
        this.buildBranches(leaves);
      },
    };
  }

  /** Puts branches over a level of nodes, level by level, up to one root. */
  private buildBranches(level: number[]): void {
    let leafKids = true;
    while (level.length > 1) {
      const next: number[] = [];
      const groups = Math.ceil(level.length / B_FILL);
      for (let g = 0, idx = 0; g < groups; g++) {
        const b = this.newBranch(leafKids);
        const take = Math.floor((level.length * (g + 1)) / groups) - Math.floor((level.length * g) / groups);
        for (let j = 0; j < take; j++) this.setChild(b, j, level[idx++]!);
        const v = this.bv(b);
        const o = this.bo(b);
        v[o + H_N] = take;
        v[o + H_MAX] = regroup(v, o + B_GAP, o + B_GRP, B_GROUPS, 0, take);
        next.push(b);
      }
      level = next;
      leafKids = false;
      this.height++;
    }
    this.root = level[0]!;
  }

  /** Writes the next entry of a bulk load as entry j (slot j) of a fresh leaf; pA/pD hold the last address so far. */
  private loadEntry(v: Float64Array, o: number, j: number, item: T): void {
    const iA = Number(item.iova);
    const iD = deltaOf(item.iova, iA);
    this.kA = iA;
    this.kD = iD;
    const lA0 = Number(item.last);
    this.writeEntry(v, o, j, j, item, lA0, deltaOf(item.last, lA0), true);
    const at = o + L_ROW + j * this.rs;
    const lA = v[at + R_LAST]!;
    const lD = lastDelta(v[at + R_META]!);
    if (compareSplit(iA, iD, this.pA, this.pD) <= 0 || compareSplit(lA, lD, iA, iD) < 0) {
      throw new Error(`IovaTree.load: areas out of order or overlapping at 0x${item.iova.toString(16)}`);
    }
    v[o + L_GAP + j] = gapNum(iA, iD, this.pA, this.pD);
    this.pA = lA;
    this.pD = lD;
  }

  /** The area containing address `a`, if any. */
  find(a: bigint): T | undefined {
    this.setKey(a);
    if (!this.seekFloor() || this.hitLastCompare(this.kA, this.kD) < 0) return undefined;
    return this.rowAt(this.hitLeaf, this.hitIdx);
  }

  /** The area with the greatest start <= a. */
  floor(a: bigint): T | undefined {
    this.setKey(a);
    return this.seekFloor() ? this.rowAt(this.hitLeaf, this.hitIdx) : undefined;
  }

  /** True when any area meets [start, last]. */
  overlaps(start: bigint, last: bigint): boolean {
    this.setKey(last);
    const id = this.descend();
    const i = this.leafUB(id);
    const lA = this.kA;
    const lD = this.kD;
    this.setKey(start);
    if (i > 0 && this.lastCompare(id, i - 1, this.kA, this.kD) >= 0) return true;
    if (compareSplit(this.kA, this.kD, lA, lD) > 0) return false;
    // Free: no area starts in [start, last] either, so an area starting at `start` goes at entry i of
    // this leaf, exactly where a descent for `start` would put it. A map inserts there next.
    this.freeLeaf = id;
    this.freeIdx = i;
    this.freeStamp = this.stamp;
    this.freeA = this.kA;
    this.freeD = this.kD;
    return false;
  }

  /**
   * The area that is exactly [iova, last], if there is one. An unmap of one whole mapping asks just
   * this: the item is built from the caller's bigints, and below 2^53 nothing is converted twice.
   */
  exactly(iova: bigint, last: bigint): T | undefined {
    // An unmap's addresses are new to the memo: split them without asking it first.
    this.setNewKey(last);
    const lastNum = this.kA;
    this.setNewKey(iova);
    if (lastNum >= EXACT) {
      const m = this.find(iova);
      return m !== undefined && m.iova === iova && m.last === last ? m : undefined;
    }
    // Below 2^53 the float64s are the exact values and the search key is iova: one descent, and the
    // item is built from the caller's bigints (converting the stored numbers back costs more).
    const iovaNum = this.kA;
    const id = this.descend();
    const i = this.leafUB(id) - 1;
    if (i < 0) return undefined;
    const v = this.lv(id);
    const o = this.lo(id);
    if (v[o + L_KEY + i] !== iovaNum) return undefined;
    const at = this.rowAt0(o, v, i);
    if (v[at + R_LAST] !== lastNum) return undefined;
    // Both below 2^53: the stored values are exact and the meta holds the codec's bits alone.
    const item = this.codec.read(iova, last, v[at + R_META]!, v, at, lastNum - iovaNum + 1);
    this.remember(id, i, item);
    return item;
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
    this.setKey(start);
    const sA = this.kA;
    const sD = this.kD;
    if (this.hitLastCompare(sA, sD) < 0) return [];
    const id = this.hitLeaf;
    const i = this.hitIdx;
    const v = this.lv(id);
    const o = this.lo(id);
    if (compareSplit(v[o + L_KEY + i]!, iovaDelta(v[this.rowAt0(o, v, i) + R_META]!), sA, sD) <= 0) return [this.rowAt(id, i)];
    return [...this.meeting(start, last)];
  }

  /**
   * Areas in address order starting with the first one at or after `start` (or, with
   * `includeContaining`, the one containing `start`).
   */
  *from(start = 0n, includeContaining = false): Generator<T> {
    this.setKey(start);
    let id = this.descend();
    let i = this.leafUB(id);
    // The descent picks the leaf whose first start is <= `start` (or the leftmost leaf), so only
    // entry i - 1 can start at or contain `start`.
    if (i > 0) {
      const v = this.lv(id);
      const o = this.lo(id);
      const meta = v[this.rowAt0(o, v, i - 1) + R_META]!;
      if ((v[o + L_KEY + i - 1] === this.kA && iovaDelta(meta) === this.kD) || (includeContaining && this.lastCompare(id, i - 1, this.kA, this.kD) >= 0)) i--;
    }
    while (id >= 0) {
      while (i < this.lv(id)[this.lo(id) + H_N]!) yield this.rowAt(id, i++);
      id = this.lv(id)[this.lo(id) + H_NEXT]!;
      i = 0;
    }
  }

  /** Inserts an area; the caller has checked that it overlaps nothing. */
  insert(area: T): void {
    // Through the key memo: a map has just checked [iova, last] for overlaps.
    this.setKey(area.last);
    const lA = this.kA;
    const lD = this.kD;
    this.setKey(area.iova);
    this.insertKey(area, lA, lD);
  }

  /** Inserts `area`, whose iova is the search key and whose last is (lA, lD). */
  private insertKey(area: T, lA: number, lD: number): void {
    let id: number;
    let i: number;
    if (this.freeStamp === this.stamp && this.freeA === this.kA && this.freeD === this.kD) {
      // Checked free by overlaps() and nothing changed since: the place is known.
      id = this.freeLeaf;
      i = this.freeIdx;
    } else {
      id = this.descend();
      i = this.leafUB(id);
    }
    this.stamp++;
    const v = this.lv(id);
    const o = this.lo(id);
    const n = (v[o + H_N]! | 0);
    // The first free slot (the one a remove freed last) takes the row.
    const slot = (v[o + L_SLOT + n]! | 0);
    for (let j = o + n; j > o + i; j--) {
      v[j + L_KEY] = v[j + L_KEY - 1]!;
      v[j + L_SLOT] = v[j + L_SLOT - 1]!;
    }
    v[o + L_SLOT + i] = slot;
    this.writeEntry(v, o, i, slot, area, lA, lD, false);
    v[o + H_N] = n + 1;
    this.count++;
    this.setSlotGap(v, o, slot, this.gapAt(id, i));
    // The area after the new one now has a smaller hole below it.
    if (i + 1 <= n) this.setSlotGap(v, o, (v[o + L_SLOT + i + 1]! | 0), gapNum(v[o + L_KEY + i + 1]!, this.keyDelta(v, o, i + 1), lA, lD));
    else this.refreshFirstOfNext(id);
    if (i === 0) this.fixMin(true, id);
    if (n + 1 > L_CAP) this.splitLeaf(id, i);
    else this.setLeafMax(v, o, id, maxOf(v, o + L_GRP, o + L_GRP + L_GROUPS));
  }

  /** Removes the area starting at `iova`; returns it, or undefined when there is none. */
  remove(iova: bigint): T | undefined {
    this.setKey(iova);
    return this.removeKey();
  }

  /** Removes the area whose iova is the search key. */
  private removeKey(): T | undefined {
    let id = this.cacheLeaf;
    let i = this.cacheIdx;
    // The area last handed out (an unmap has just looked it up), if nothing changed since: no search.
    if (this.cacheStamp !== this.stamp || id < 0 || this.lv(id)[this.lo(id) + L_KEY + i] !== this.kA) {
      id = this.descend();
      i = this.leafUB(id) - 1;
      if (i < 0) return undefined;
    }
    const v = this.lv(id);
    const o = this.lo(id);
    if (v[o + L_KEY + i] !== this.kA || this.keyDelta(v, o, i) !== this.kD) return undefined;
    const area = this.rowAt(id, i);
    this.stamp++;
    const n = (v[o + H_N]! | 0) - 1;
    const slot = (v[o + L_SLOT + i]! | 0);
    for (let j = o + i; j < o + n; j++) {
      v[j + L_KEY] = v[j + L_KEY + 1]!;
      v[j + L_SLOT] = v[j + L_SLOT + 1]!;
    }
    // The freed slot heads the free ones: the next insert takes it while its lines are warm.
    v[o + L_SLOT + n] = slot;
    v[o + H_N] = n;
    this.count--;
    this.setSlotGap(v, o, slot, -1);
    // The next area's hole grows to reach down to the area before the removed one.
    if (i < n) this.setSlotGap(v, o, (v[o + L_SLOT + i]! | 0), this.gapAt(id, i));
    else this.refreshFirstOfNext(id);
    if (i === 0 && n > 0) this.fixMin(true, id);
    this.setLeafMax(v, o, id, maxOf(v, o + L_GRP, o + L_GRP + L_GROUPS));
    if (n < L_MIN && (v[o + H_PARENT]! | 0) >= 0) this.rebalance(true, id);
    this.codec.removed?.(area);
    return area;
  }

  /**
   * The lowest hole part inside [windowStart, windowLast] where `fits` accepts a placement, trying
   * only holes of at least `minSize` bytes beyond the first. `fits` receives the clipped hole and
   * answers the placement's start, or undefined.
   */
  firstFit(windowStart: bigint, windowLast: bigint, minSize: bigint, fits: (hole: Hole) => bigint | undefined): bigint | undefined {
    this.settleGaps();
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
      const nextIova = this.seekAtOrAfter(holeStart) ? this.hitIova() : undefined;
      const holeLast = nextIova !== undefined ? nextIova - 1n : U64_MAX;
      if (holeLast >= holeStart) {
        const at = fits({ start: holeStart, last: holeLast < windowLast ? holeLast : windowLast });
        if (at !== undefined) return at;
      }
      if (nextIova === undefined || this.hitLast() >= windowLast) return undefined;
      // Jump to the next hole big enough to matter: below the first area after `next` with a gap >= minSize.
      if (this.seekGap(nextIova, minSize)) {
        this.predLast(this.hitLeaf, this.hitIdx);
        holeStart = joinU64(this.pA, this.pD) + 1n;
      } else {
        // Only the hole above the last area is left; it is worth a look only if it is big enough.
        let id = this.root;
        for (let h = this.height; h > 0; h--) id = this.bv(id)[this.bo(id) + B_KID + this.bv(id)[this.bo(id) + H_N]! - 1]!;
        this.hitLeaf = id;
        this.hitIdx = this.lv(id)[this.lo(id) + H_N]! - 1;
        const last = this.hitLast();
        if (last === U64_MAX || U64_MAX - last < minSize) return undefined;
        holeStart = last + 1n;
      }
    }
  }

  /** Checks the structure (tests only): order, no overlap, gaps and maxima, keys, slots, links, counts. */
  checkInvariants(): void {
    let prevLast = -1n;
    let n = 0;
    let prevLeaf = -1;
    let leafCount = 0;
    let branchCount = 0;
    const fail = (what: string): never => {
      throw new Error(`IovaTree invariant: ${what}`);
    };
    const checkGroups = (v: Float64Array, gaps: number, groups: number, groupCount: number, count: number): number => {
      for (let g = 0; g < groupCount; g++) {
        const start = g * GROUP;
        const want = start < count ? maxOf(v, gaps + start, gaps + Math.min(count, start + GROUP)) : -1;
        if (v[groups + g] !== want) fail(`group ${g} maximum`);
      }
      return maxOf(v, gaps, gaps + count);
    };
    /** Visits a node; answers its smallest key. */
    const visit = (leaf: boolean, id: number, parent: number, pi: number, height: number): bigint | undefined => {
      if (leaf) {
        leafCount++;
        if (height !== 0) fail('unbalanced');
        const v = this.lv(id);
        const o = this.lo(id);
        const count = v[o + H_N]!;
        if (count === 0 && id !== this.root) fail('empty leaf');
        if (count > L_CAP) fail('overfull leaf');
        if (v[o + H_PARENT] !== parent || (parent >= 0 && v[o + H_PI] !== pi)) fail('leaf parent link');
        if (v[o + H_PREV] !== prevLeaf) fail('leaf prev link');
        if (prevLeaf >= 0 && this.lv(prevLeaf)[this.lo(prevLeaf) + H_NEXT] !== id) fail('leaf next link');
        prevLeaf = id;
        const slots = new Set<number>();
        for (let j = 0; j < L_SLOTS; j++) slots.add(v[o + L_SLOT + j]!);
        if (slots.size !== L_SLOTS || [...slots].some((s) => !(s >= 0 && s < L_SLOTS && Number.isInteger(s)))) fail('slot column is not a permutation');
        for (let j = count; j < L_SLOTS; j++) if (v[o + L_GAP + v[o + L_SLOT + j]!] !== -1) fail('free slot with a gap');
        for (let i = 0; i < count; i++) {
          const at = this.rowAt0(o, v, i);
          const meta = v[at + R_META]!;
          const iova = joinU64(v[o + L_KEY + i]!, iovaDelta(meta));
          const last = joinU64(v[at + R_LAST]!, lastDelta(meta));
          if (Number(iova) !== v[o + L_KEY + i] || Number(last) !== v[at + R_LAST]) fail(`approximation at 0x${iova.toString(16)}`);
          if (iova <= prevLast || last < iova || last > U64_MAX) fail(`order/overlap at 0x${iova.toString(16)}`);
          if (v[o + L_GAP + v[o + L_SLOT + i]!] !== Number(iova - prevLast - 1n)) fail(`gap at 0x${iova.toString(16)}`);
          prevLast = last;
          n++;
        }
        if (v[o + H_MAX] !== checkGroups(v, o + L_GAP, o + L_GRP, L_GROUPS, L_SLOTS)) fail('leaf maximum');
        return count > 0 ? joinU64(v[o + L_KEY]!, iovaDelta(v[this.rowAt0(o, v, 0) + R_META]!)) : undefined;
      }
      branchCount++;
      const v = this.bv(id);
      const o = this.bo(id);
      const count = v[o + H_N]!;
      if (count < 1 || count > B_CAP) fail('branch size');
      if (id === this.root && count < 2) fail('root with one child');
      if (v[o + H_PARENT] !== parent || (parent >= 0 && v[o + H_PI] !== pi)) fail('branch parent link');
      if ((v[o + H_LEAFKIDS] === 1) !== (height === 1)) fail('branch child kind');
      let min: bigint | undefined;
      for (let c = 0; c < count; c++) {
        const kid = v[o + B_KID + c]!;
        const cmin = visit(height === 1, kid, id, c, height - 1);
        if (cmin === undefined || joinU64(v[o + B_KEY + c]!, v[o + B_DELTA + c]!) !== cmin) fail('branch key');
        const kidMax = height === 1 ? this.lv(kid)[this.lo(kid) + H_MAX] : this.bv(kid)[this.bo(kid) + H_MAX];
        if (v[o + B_GAP + c] !== kidMax) fail('branch gap');
        if (c === 0) min = cmin;
      }
      if (v[o + H_MAX] !== checkGroups(v, o + B_GAP, o + B_GRP, B_GROUPS, count)) fail('branch maximum');
      return min;
    };
    // Lazy gaps: a leaf not listed as stale has its largest gap in its parent already.
    for (const id of this.stale) if (this.lv(id)[this.lo(id) + H_STALE] !== 1) fail('listed stale leaf not flagged');
    let leaf = this.root;
    for (let h = this.height; h > 0; h--) leaf = this.bv(leaf)[this.bo(leaf) + B_KID]!;
    for (; leaf >= 0; leaf = this.lv(leaf)[this.lo(leaf) + H_NEXT]!) {
      const v = this.lv(leaf);
      const o = this.lo(leaf);
      const p = v[o + H_PARENT]!;
      if (p >= 0 && v[o + H_STALE] === 0 && this.bv(p)[this.bo(p) + B_GAP + v[o + H_PI]!] !== v[o + H_MAX]) fail('leaf maximum changed without being listed stale');
    }
    this.settleGaps();
    visit(this.height === 0, this.root, -1, 0, this.height);
    if (prevLeaf >= 0 && this.lv(prevLeaf)[this.lo(prevLeaf) + H_NEXT] !== -1) fail('last leaf next link');
    if (n !== this.count) fail('count');
    if (leafCount !== this.leaves.live || branchCount !== this.branches.live) fail('nodes leaked');
  }

  // ---- nodes -------------------------------------------------------------------------------------

  private lv(id: number): Float64Array {
    return this.lchunks[id >>> CHUNK_BITS]!;
  }

  private lo(id: number): number {
    return (id & CHUNK_MASK) * this.lsize;
  }

  private bv(id: number): Float64Array {
    return this.bchunks[id >>> CHUNK_BITS]!;
  }

  private bo(id: number): number {
    return (id & CHUNK_MASK) * BRANCH_SIZE;
  }

  /** Where entry i's row starts. */
  private rowAt0(o: number, v: Float64Array, i: number): number {
    return o + L_ROW + (v[o + L_SLOT + i]! | 0) * this.rs;
  }

  private newLeaf(prev: number, next: number): number {
    const id = this.leaves.alloc();
    const v = this.lv(id);
    const o = this.lo(id);
    v[o + H_N] = 0;
    v[o + H_MAX] = -1;
    v[o + H_PARENT] = -1;
    v[o + H_PI] = 0;
    v[o + H_PREV] = prev;
    v[o + H_NEXT] = next;
    v[o + H_STALE] = 0;
    v.fill(-1, o + L_GAP, o + L_GRP + L_GROUPS);
    for (let s = 0; s < L_SLOTS; s++) v[o + L_SLOT + s] = s;
    return id;
  }

  private newBranch(leafKids: boolean): number {
    const id = this.branches.alloc();
    const v = this.bv(id);
    const o = this.bo(id);
    v[o + H_N] = 0;
    v[o + H_MAX] = -1;
    v[o + H_PARENT] = -1;
    v[o + H_PI] = 0;
    v[o + H_LEAFKIDS] = leafKids ? 1 : 0;
    v.fill(-1, o + B_GRP, o + B_GRP + B_GROUPS);
    return id;
  }

  // ---- entries -----------------------------------------------------------------------------------

  private setKey(k: bigint): void {
    if (k === this.memoK0) {
      this.kA = this.memoA0;
      this.kD = this.memoD0;
    } else if (k === this.memoK1) {
      this.kA = this.memoA1;
      this.kD = this.memoD1;
    } else {
      this.setNewKey(k);
    }
  }

  /** Splits k into the search key and remembers it. */
  private setNewKey(k: bigint): void {
    const a = Number(k);
    this.kA = a;
    this.kD = deltaOf(k, a);
    this.memoK1 = this.memoK0;
    this.memoA1 = this.memoA0;
    this.memoD1 = this.memoD0;
    this.memoK0 = k;
    this.memoA0 = a;
    this.memoD0 = this.kD;
  }

  /** Writes item as entry i, its row in `slot`, given its last split as (lA, lD) (the gap is the caller's). */
  private writeEntry(v: Float64Array, o: number, i: number, slot: number, item: T, lA: number, lD: number, bulk: boolean): void {
    const at = o + L_ROW + slot * this.rs;
    // The caller has just set the search key to item.iova.
    v[o + L_KEY + i] = this.kA;
    v[at + R_LAST] = lA;
    const bits = this.codec.write(item, v, at, bulk);
    v[at + R_META] = metaOf(bits, this.kD, lD);
  }

  /** Entry i's iova correction: 0 below 2^53 without reading its row. */
  private keyDelta(v: Float64Array, o: number, i: number): number {
    return v[o + L_KEY + i]! < EXACT ? 0 : iovaDelta(v[this.rowAt0(o, v, i) + R_META]!);
  }

  /** Makes `item` the materialized item of entry i of leaf id (reused while nothing changes). */
  private remember(id: number, i: number, item: T): void {
    this.cacheLeaf = id;
    this.cacheIdx = i;
    this.cacheStamp = this.stamp;
    this.cacheVersion = this.codec.version ? this.codec.version() : 0;
    this.cacheItem = item;
  }

  private rowAt(id: number, i: number): T {
    const version = this.codec.version ? this.codec.version() : 0;
    if (this.cacheLeaf === id && this.cacheIdx === i && this.cacheStamp === this.stamp && this.cacheVersion === version) return this.cacheItem!;
    const v = this.lv(id);
    const o = this.lo(id);
    const at = this.rowAt0(o, v, i);
    const meta = v[at + R_META]!;
    const iA = v[o + L_KEY + i]!;
    const lA = v[at + R_LAST]!;
    const item =
      meta < BITS
        ? this.codec.read(BigInt(iA), BigInt(lA), meta, v, at, lA < EXACT ? lA - iA + 1 : -1)
        : this.codec.read(joinU64(iA, iovaDelta(meta)), joinU64(lA, lastDelta(meta)), meta % BITS, v, at, -1);
    this.cacheLeaf = id;
    this.cacheIdx = i;
    this.cacheStamp = this.stamp;
    this.cacheVersion = version;
    this.cacheItem = item;
    return item;
  }

  /** Entry i's last compared with (a, d). */
  private lastCompare(id: number, i: number, a: number, d: number): number {
    const v = this.lv(id);
    const at = this.rowAt0(this.lo(id), v, i);
    return compareSplit(v[at + R_LAST]!, lastDelta(v[at + R_META]!), a, d);
  }

  private hitLastCompare(a: number, d: number): number {
    return this.lastCompare(this.hitLeaf, this.hitIdx, a, d);
  }

  private hitLast(): bigint {
    const v = this.lv(this.hitLeaf);
    const at = this.rowAt0(this.lo(this.hitLeaf), v, this.hitIdx);
    return joinU64(v[at + R_LAST]!, lastDelta(v[at + R_META]!));
  }

  private hitIova(): bigint {
    const v = this.lv(this.hitLeaf);
    const o = this.lo(this.hitLeaf);
    return joinU64(v[o + L_KEY + this.hitIdx]!, iovaDelta(v[this.rowAt0(o, v, this.hitIdx) + R_META]!));
  }

  /** Sets pA/pD to the last address of the entry before (leaf, i), or -1 when there is none. */
  private predLast(id: number, i: number): void {
    let j = i - 1;
    while (j < 0) {
      id = this.lv(id)[this.lo(id) + H_PREV]!;
      if (id < 0) {
        this.pA = -1;
        this.pD = 0;
        return;
      }
      j = this.lv(id)[this.lo(id) + H_N]! - 1;
    }
    const v = this.lv(id);
    const at = this.rowAt0(this.lo(id), v, j);
    this.pA = v[at + R_LAST]!;
    this.pD = lastDelta(v[at + R_META]!);
  }

  /** Entry i's gap, from its predecessor. */
  private gapAt(id: number, i: number): number {
    this.predLast(id, i);
    const v = this.lv(id);
    const o = this.lo(id);
    return gapNum(v[o + L_KEY + i]!, this.keyDelta(v, o, i), this.pA, this.pD);
  }

  /** Sets the gap kept in a slot and the maximum of its group (the leaf's own maximum is the caller's). */
  private setSlotGap(v: Float64Array, o: number, slot: number, g: number): void {
    const old = v[o + L_GAP + slot]!;
    v[o + L_GAP + slot] = g;
    const gi = o + L_GRP + (slot >> 3);
    const gm = v[gi]!;
    if (g >= gm) v[gi] = g;
    else if (old === gm) {
      const start = o + L_GAP + (slot & ~(GROUP - 1));
      v[gi] = maxOf(v, start, start + GROUP);
    }
  }

  /** The first entry of the leaf after `id` got a new predecessor: its gap, and the maxima above it. */
  private refreshFirstOfNext(id: number): void {
    const next = this.lv(id)[this.lo(id) + H_NEXT]!;
    if (next < 0) return;
    const v = this.lv(next);
    const o = this.lo(next);
    this.setSlotGap(v, o, (v[o + L_SLOT]! | 0), this.gapAt(next, 0));
    this.setLeafMax(v, o, next, maxOf(v, o + L_GRP, o + L_GRP + L_GROUPS));
  }

  /**
   * Leaf `id` (at v, o) now has largest gap m. Its parent learns it only when the branches' gaps are
   * read (a first-fit search) or the shape changes (a split or merge): see {@link settleGaps}.
   */
  private setLeafMax(v: Float64Array, o: number, id: number, m: number): void {
    if (v[o + H_MAX] === m) return;
    v[o + H_MAX] = m;
    if (v[o + H_STALE] === 0 && (v[o + H_PARENT]! | 0) >= 0) {
      v[o + H_STALE] = 1;
      this.stale.push(id);
    }
  }

  /**
   * Carries the largest gaps of the leaves that changed since the last time up to the root. A fixed
   * map or unmap changes the holes of one leaf (a hole grows, then shrinks back): walking up to the
   * root for each would touch every level twice for nothing. The search pays for the walks it needs,
   * each at most O(log n), one per leaf changed: amortized, still O(log n) per operation.
   */
  private settleGaps(): void {
    const stale = this.stale;
    for (let k = 0; k < stale.length; k++) {
      const id = stale[k]!;
      const v = this.lv(id);
      const o = this.lo(id);
      v[o + H_STALE] = 0;
      const p = (v[o + H_PARENT]! | 0);
      if (p < 0) continue;
      const pv = this.bv(p);
      const po = this.bo(p);
      this.setMax(false, p, setChildGap(pv, po + B_GAP, po + B_GRP, (v[o + H_PI]! | 0), v[o + H_MAX]!, (pv[po + H_N]! | 0)));
    }
    stale.length = 0;
  }

  // ---- search ----------------------------------------------------------------------------------

  /** First child of branch (v, o) whose smallest key is > the search key. */
  private branchUB(v: Float64Array, o: number): number {
    const kA = this.kA;
    const kD = this.kD;
    let lo = 0;
    let hi = (v[o + H_N]! | 0);
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = v[o + B_KEY + mid]!;
      if (x < kA || (x === kA && v[o + B_DELTA + mid]! <= kD)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First entry of a leaf whose iova is > the search key. */
  private leafUB(id: number): number {
    const v = this.lv(id);
    const o = this.lo(id);
    const kA = this.kA;
    const kD = this.kD;
    let lo = 0;
    let hi = (v[o + H_N]! | 0);
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = v[o + L_KEY + mid]!;
      if (x < kA || (x === kA && (kA < EXACT || iovaDelta(v[this.rowAt0(o, v, mid) + R_META]!) <= kD))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The leaf where the search key belongs: the last one whose first iova is <= the key, or the leftmost. */
  private descend(): number {
    const kA = this.kA;
    const kD = this.kD;
    if (this.fingerShape === this.shape && (kA < this.fenceA || (kA === this.fenceA && kD < this.fenceD))) {
      const id = this.fingerLeaf;
      const v = this.lv(id);
      const o = this.lo(id);
      if ((v[o + H_PREV]! | 0) < 0) return id;
      const first = v[o + L_KEY]!;
      if (first < kA || (first === kA && iovaDelta(v[this.rowAt0(o, v, 0) + R_META]!) <= kD)) return id;
    }
    let id = this.root;
    let fenceA = Infinity;
    let fenceD = 0;
    let touched = 0;
    const prefetch = this.count >= PREFETCH_FROM;
    for (let h = this.height; h > 0; h--) {
      const v = this.bv(id);
      const o = this.bo(id);
      if (prefetch) touched += touch(v, o, B_DELTA);
      const i = this.branchUB(v, o);
      // Child i (when there is one) is the first whose keys are all above the search key.
      if (i < (v[o + H_N]! | 0)) {
        fenceA = v[o + B_KEY + i]!;
        fenceD = v[o + B_DELTA + i]!;
      }
      id = (v[o + B_KID + (i > 0 ? i - 1 : 0)]! | 0);
    }
    const v = this.lv(id);
    const o = this.lo(id);
    if (prefetch) this.sink = touched + touch(v, o, L_ROW);
    this.fingerShape = this.shape;
    this.fingerLeaf = id;
    this.fenceA = fenceA;
    this.fenceD = fenceD;
    return id;
  }

  /** The entry with the greatest iova <= the search key, into hitLeaf/hitIdx; false when none. */
  private seekFloor(): boolean {
    const id = this.descend();
    const i = this.leafUB(id) - 1;
    // Branch keys are exact smallest keys, so only the leftmost leaf can have nothing <= the key.
    if (i < 0) return false;
    this.hitLeaf = id;
    this.hitIdx = i;
    return true;
  }

  /** The first entry with iova >= a, into hitLeaf/hitIdx; false when none. */
  private seekAtOrAfter(a: bigint): boolean {
    this.setKey(a);
    const id = this.descend();
    const v = this.lv(id);
    const o = this.lo(id);
    let i = this.leafUB(id);
    if (i > 0 && v[o + L_KEY + i - 1] === this.kA && iovaDelta(v[this.rowAt0(o, v, i - 1) + R_META]!) === this.kD) i--;
    if (i < (v[o + H_N]! | 0)) {
      this.hitLeaf = id;
      this.hitIdx = i;
      return true;
    }
    const next = (v[o + H_NEXT]! | 0);
    if (next < 0) return false;
    this.hitLeaf = next;
    this.hitIdx = 0;
    return true;
  }

  /** The first entry with iova > after whose gap is at least minSize, into hitLeaf/hitIdx. */
  private seekGap(after: bigint, minSize: bigint): boolean {
    this.setKey(after);
    return this.searchGap(this.height === 0, this.root, Number(minSize), minSize);
  }

  private searchGap(leaf: boolean, id: number, need: number, minSize: bigint): boolean {
    if (leaf) {
      const v = this.lv(id);
      const o = this.lo(id);
      if (v[o + H_MAX]! < need) return false;
      const n = (v[o + H_N]! | 0);
      for (let i = this.leafUB(id); i < n; i++) {
        const g = v[o + L_GAP + (v[o + L_SLOT + i]! | 0)]!;
        if (g < need) continue;
        // Both below 2^53: the floats are the exact values. Otherwise settle it exactly.
        if (!(g < EXACT && need < EXACT)) {
          this.predLast(id, i);
          const exact = joinU64(v[o + L_KEY + i]!, iovaDelta(v[this.rowAt0(o, v, i) + R_META]!)) - joinU64(this.pA, this.pD) - 1n;
          if (exact < minSize) continue;
        }
        this.hitLeaf = id;
        this.hitIdx = i;
        return true;
      }
      return false;
    }
    const v = this.bv(id);
    const o = this.bo(id);
    if (v[o + H_MAX]! < need) return false;
    const n = (v[o + H_N]! | 0);
    const kidsAreLeaves = v[o + H_LEAFKIDS] === 1;
    const first = this.branchUB(v, o);
    for (let c = first > 0 ? first - 1 : 0; c < n; c++) {
      if (v[o + B_GAP + c]! >= need && this.searchGap(kidsAreLeaves, (v[o + B_KID + c]! | 0), need, minSize)) return true;
    }
    return false;
  }

  // ---- structure -------------------------------------------------------------------------------

  /** Node `id` (a leaf when `leaf`) now has largest gap m: store it and carry the change up. */
  private setMax(leaf: boolean, id: number, m: number): void {
    let v = leaf ? this.lv(id) : this.bv(id);
    let o = leaf ? this.lo(id) : this.bo(id);
    for (;;) {
      if (v[o + H_MAX] === m) return;
      v[o + H_MAX] = m;
      const p = (v[o + H_PARENT]! | 0);
      if (p < 0) return;
      const pi = (v[o + H_PI]! | 0);
      v = this.bv(p);
      o = this.bo(p);
      m = setChildGap(v, o + B_GAP, o + B_GRP, pi, m, (v[o + H_N]! | 0));
    }
  }

  /** A node's smallest key changed: set it in the parents for which it is the first child. */
  private fixMin(leaf: boolean, id: number): void {
    let v = leaf ? this.lv(id) : this.bv(id);
    let o = leaf ? this.lo(id) : this.bo(id);
    let a: number;
    let d: number;
    if (leaf) {
      a = v[o + L_KEY]!;
      d = iovaDelta(v[this.rowAt0(o, v, 0) + R_META]!);
    } else {
      a = v[o + B_KEY]!;
      d = v[o + B_DELTA]!;
    }
    for (;;) {
      const p = (v[o + H_PARENT]! | 0);
      if (p < 0) return;
      const pi = (v[o + H_PI]! | 0);
      v = this.bv(p);
      o = this.bo(p);
      v[o + B_KEY + pi] = a;
      v[o + B_DELTA + pi] = d;
      if (pi !== 0) return;
    }
  }

  /** Puts node `kid` at index i of branch b (key, gap, links); b's count and groups are the caller's. */
  private setChild(b: number, i: number, kid: number): void {
    const v = this.bv(b);
    const o = this.bo(b);
    const leafKid = v[o + H_LEAFKIDS] === 1;
    const kv = leafKid ? this.lv(kid) : this.bv(kid);
    const ko = leafKid ? this.lo(kid) : this.bo(kid);
    kv[ko + H_PARENT] = b;
    kv[ko + H_PI] = i;
    v[o + B_KID + i] = kid;
    v[o + B_GAP + i] = kv[ko + H_MAX]!;
    if (leafKid) {
      v[o + B_KEY + i] = kv[ko + L_KEY]!;
      v[o + B_DELTA + i] = (kv[ko + H_N]! | 0) > 0 ? iovaDelta(kv[this.rowAt0(ko, kv, 0) + R_META]!) : 0;
    } else {
      v[o + B_KEY + i] = kv[ko + B_KEY]!;
      v[o + B_DELTA + i] = kv[ko + B_DELTA]!;
    }
  }

  /**
   * Moves entries [from, from + count) of leaf src to positions [to, ...) of another leaf dst: keys,
   * and rows and gaps into the slots dst names there (free ones). The source slots are left free; the
   * columns' order and counts are the caller's.
   */
  private transfer(src: number, from: number, dst: number, to: number, count: number): void {
    const sv = this.lv(src);
    const so = this.lo(src);
    const dv = this.lv(dst);
    const dO = this.lo(dst);
    const rs = this.rs;
    for (let j = 0; j < count; j++) {
      const sSlot = (sv[so + L_SLOT + from + j]! | 0);
      const dSlot = (dv[dO + L_SLOT + to + j]! | 0);
      dv[dO + L_KEY + to + j] = sv[so + L_KEY + from + j]!;
      dv[dO + L_GAP + dSlot] = sv[so + L_GAP + sSlot]!;
      sv[so + L_GAP + sSlot] = -1;
      const sAt = so + L_ROW + sSlot * rs;
      const dAt = dO + L_ROW + dSlot * rs;
      for (let c = 0; c < rs; c++) dv[dAt + c] = sv[sAt + c]!;
    }
  }

  private splitLeaf(id: number, insertedAt: number): void {
    this.settleGaps();
    this.shape++;
    const v = this.lv(id);
    const o = this.lo(id);
    const n = (v[o + H_N]! | 0);
    let cut = n >> 1;
    const next = (v[o + H_NEXT]! | 0);
    if (next < 0 && insertedAt === n - 1) cut = L_FILL;
    else if ((v[o + H_PREV]! | 0) < 0 && insertedAt === 0) cut = n - L_FILL;
    const right = this.newLeaf(id, next);
    if (next >= 0) this.lv(next)[this.lo(next) + H_PREV] = right;
    v[o + H_NEXT] = right;
    // Right's slots are fresh (slot j for entry j); left's moved-out slots join its free tail as they are.
    this.transfer(id, cut, right, 0, n - cut);
    const rv = this.lv(right);
    const ro = this.lo(right);
    rv[ro + H_N] = n - cut;
    v[o + H_N] = cut;
    // The parent still holds the maximum from before the insert: addSibling sets both halves'.
    v[o + H_MAX] = regroup(v, o + L_GAP, o + L_GRP, L_GROUPS, 0, L_SLOTS);
    rv[ro + H_MAX] = regroup(rv, ro + L_GAP, ro + L_GRP, L_GROUPS, 0, L_SLOTS);
    this.addSibling(true, id, right);
  }

  private splitBranch(id: number, insertedAt: number): void {
    const v = this.bv(id);
    const o = this.bo(id);
    const n = (v[o + H_N]! | 0);
    let cut = n >> 1;
    if (insertedAt === n - 1 && this.isEdge(id, true)) cut = B_FILL;
    else if (insertedAt === 0 && this.isEdge(id, false)) cut = n - B_FILL;
    const right = this.newBranch(v[o + H_LEAFKIDS] === 1);
    for (let j = cut; j < n; j++) this.setChild(right, j - cut, (v[o + B_KID + j]! | 0));
    const rv = this.bv(right);
    const ro = this.bo(right);
    rv[ro + H_N] = n - cut;
    v[o + H_N] = cut;
    v[o + H_MAX] = regroup(v, o + B_GAP, o + B_GRP, B_GROUPS, 0, cut);
    rv[ro + H_MAX] = regroup(rv, ro + B_GAP, ro + B_GRP, B_GROUPS, 0, n - cut);
    this.addSibling(false, id, right);
  }

  /** True when branch id is the last (rightmost) or first child at every level up to the root. */
  private isEdge(id: number, rightmost: boolean): boolean {
    for (let v = this.bv(id), o = this.bo(id); (v[o + H_PARENT]! | 0) >= 0; ) {
      const p = (v[o + H_PARENT]! | 0);
      const pi = (v[o + H_PI]! | 0);
      v = this.bv(p);
      o = this.bo(p);
      if (pi !== (rightmost ? (v[o + H_N]! | 0) - 1 : 0)) return false;
    }
    return true;
  }

  /** Inserts `right` just after node `id` in its parent (a new root when there is none). */
  private addSibling(leaf: boolean, id: number, right: number): void {
    const nv = leaf ? this.lv(id) : this.bv(id);
    const no = leaf ? this.lo(id) : this.bo(id);
    const p = (nv[no + H_PARENT]! | 0);
    if (p < 0) {
      const root = this.newBranch(leaf);
      this.setChild(root, 0, id);
      this.setChild(root, 1, right);
      const v = this.bv(root);
      const o = this.bo(root);
      v[o + H_N] = 2;
      v[o + H_MAX] = regroup(v, o + B_GAP, o + B_GRP, B_GROUPS, 0, 2);
      this.root = root;
      this.height++;
      return;
    }
    const v = this.bv(p);
    const o = this.bo(p);
    const n = (v[o + H_N]! | 0);
    const at = (nv[no + H_PI]! | 0) + 1;
    for (const base of [B_KEY, B_DELTA, B_GAP, B_KID]) v.copyWithin(o + base + at + 1, o + base + at, o + base + n);
    v[o + H_N] = n + 1;
    for (let j = at + 1; j <= n; j++) this.setPi(leaf, (v[o + B_KID + j]! | 0), j);
    this.setChild(p, at, right);
    v[o + B_GAP + at - 1] = nv[no + H_MAX]!;
    const max = regroup(v, o + B_GAP, o + B_GRP, B_GROUPS, 0, n + 1);
    if (n + 1 > B_CAP) this.splitBranch(p, at);
    else this.setMax(false, p, max);
  }

  private setPi(leaf: boolean, id: number, pi: number): void {
    if (leaf) this.lv(id)[this.lo(id) + H_PI] = pi;
    else this.bv(id)[this.bo(id) + H_PI] = pi;
  }

  /** Merges an underfull node with a neighbour, or moves entries over from it. */
  private rebalance(leaf: boolean, id: number): void {
    this.settleGaps();
    this.shape++;
    const nv = leaf ? this.lv(id) : this.bv(id);
    const no = leaf ? this.lo(id) : this.bo(id);
    const p = (nv[no + H_PARENT]! | 0);
    const pi = (nv[no + H_PI]! | 0);
    const v = this.bv(p);
    const o = this.bo(p);
    const left = pi > 0 ? (v[o + B_KID + pi - 1]! | 0) : id;
    const right = pi > 0 ? id : (v[o + B_KID + pi + 1]! | 0);
    const leftPi = pi > 0 ? pi - 1 : pi;
    const rightN = leaf ? this.moveEntries(left, right) : this.moveKids(left, right);
    this.fixMin(leaf, left);
    v[o + B_GAP + leftPi] = leaf ? this.lv(left)[this.lo(left) + H_MAX]! : this.bv(left)[this.bo(left) + H_MAX]!;
    if (rightN > 0) {
      this.fixMin(leaf, right);
      v[o + B_GAP + leftPi + 1] = leaf ? this.lv(right)[this.lo(right) + H_MAX]! : this.bv(right)[this.bo(right) + H_MAX]!;
    } else {
      this.removeChild(p, leftPi + 1, leaf);
      if (leaf) this.leaves.release(right);
      else this.branches.release(right);
    }
    const n = (v[o + H_N]! | 0);
    this.setMax(false, p, regroup(v, o + B_GAP, o + B_GRP, B_GROUPS, 0, n));
    if (p === this.root) {
      if (n === 1) {
        this.root = (v[o + B_KID]! | 0);
        this.height--;
        this.branches.release(p);
        if (leaf) this.lv(this.root)[this.lo(this.root) + H_PARENT] = -1;
        else this.bv(this.root)[this.bo(this.root) + H_PARENT] = -1;
      }
    } else if (n < B_MIN) {
      this.rebalance(false, p);
    }
  }

  /**
   * Adjacent leaves: all entries into `left` when they fit with room to spare, else half each.
   * Answers how many stay in `right` (0: it is empty and must go).
   */
  private moveEntries(left: number, right: number): number {
    const lv = this.lv(left);
    const lo = this.lo(left);
    const rv = this.lv(right);
    const ro = this.lo(right);
    const ln = (lv[lo + H_N]! | 0);
    const rn = (rv[ro + H_N]! | 0);
    const total = ln + rn;
    const keep = total <= L_CAP - L_MIN ? total : total >> 1;
    if (keep > ln) {
      // Right's first k entries go to left's end (into left's free slots); right's freed slots join its free tail.
      const k = keep - ln;
      this.transfer(right, 0, left, ln, k);
      const freed = Array.from(rv.subarray(ro + L_SLOT, ro + L_SLOT + k));
      rv.copyWithin(ro + L_KEY, ro + L_KEY + k, ro + L_KEY + rn);
      rv.copyWithin(ro + L_SLOT, ro + L_SLOT + k, ro + L_SLOT + rn);
      rv.set(freed, ro + L_SLOT + rn - k);
    } else if (keep < ln) {
      // Left's last k entries go to right's front, into right's first free slots.
      const k = ln - keep;
      const taken = Array.from(rv.subarray(ro + L_SLOT + rn, ro + L_SLOT + rn + k));
      rv.copyWithin(ro + L_KEY + k, ro + L_KEY, ro + L_KEY + rn);
      rv.copyWithin(ro + L_SLOT + k, ro + L_SLOT, ro + L_SLOT + rn);
      rv.set(taken, ro + L_SLOT);
      this.transfer(left, keep, right, 0, k);
    }
    lv[lo + H_N] = keep;
    rv[ro + H_N] = total - keep;
    lv[lo + H_MAX] = regroup(lv, lo + L_GAP, lo + L_GRP, L_GROUPS, 0, L_SLOTS);
    rv[ro + H_MAX] = regroup(rv, ro + L_GAP, ro + L_GRP, L_GROUPS, 0, L_SLOTS);
    if (total - keep === 0) {
      const next = (rv[ro + H_NEXT]! | 0);
      lv[lo + H_NEXT] = next;
      if (next >= 0) this.lv(next)[this.lo(next) + H_PREV] = left;
    }
    return total - keep;
  }

  /** Adjacent branches: all children into `left` when they fit with room to spare, else half each. */
  private moveKids(left: number, right: number): number {
    const lv = this.bv(left);
    const lo = this.bo(left);
    const rv = this.bv(right);
    const ro = this.bo(right);
    const ln = (lv[lo + H_N]! | 0);
    const rn = (rv[ro + H_N]! | 0);
    const total = ln + rn;
    const keep = total <= B_CAP - B_MIN ? total : total >> 1;
    const kids = [...lv.subarray(lo + B_KID, lo + B_KID + ln), ...rv.subarray(ro + B_KID, ro + B_KID + rn)];
    for (let j = 0; j < keep; j++) this.setChild(left, j, kids[j]!);
    for (let j = keep; j < total; j++) this.setChild(right, j - keep, kids[j]!);
    lv[lo + H_N] = keep;
    rv[ro + H_N] = total - keep;
    lv[lo + H_MAX] = regroup(lv, lo + B_GAP, lo + B_GRP, B_GROUPS, 0, keep);
    rv[ro + H_MAX] = regroup(rv, ro + B_GAP, ro + B_GRP, B_GROUPS, 0, total - keep);
    return total - keep;
  }

  /** Drops child i of branch b (key, gap, link); groups and maximum are the caller's. */
  private removeChild(b: number, i: number, leafKids: boolean): void {
    const v = this.bv(b);
    const o = this.bo(b);
    const n = (v[o + H_N]! | 0);
    for (const base of [B_KEY, B_DELTA, B_GAP, B_KID]) v.copyWithin(o + base + i, o + base + i + 1, o + base + n);
    v[o + H_N] = n - 1;
    for (let j = i; j < n - 1; j++) this.setPi(leafKids, (v[o + B_KID + j]! | 0), j);
    if (i === 0 && n > 1) this.fixMin(false, b);
  }
}
