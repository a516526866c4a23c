import { U64_MAX } from './u64.js';

/**
 * The ordered, non-overlapping areas of one I/O address space, in a B+tree keyed by start address.
 *
 * Why a B+tree: lookups, inserts and removes are O(log n) with a fan-out of 64, so an address space
 * with a million areas is three or four levels deep and each level is one small array, which keeps
 * the cost at 1M areas close to the cost at 1k.
 *
 * Lowest-fitting-hole search (IOVA auto-allocation) is O(log n) too: every entry remembers the size
 * of the hole just below it ("gap"), and every node the largest gap beneath it. Gaps are u64, kept
 * for pruning as float64: rounding is monotonic, so `gap >= len` implies `Number(gap) >= Number(len)`
 * and pruning on the float never skips a real fit; candidates are then checked exactly.
 */
export interface Span {
  readonly iova: bigint;
  readonly last: bigint;
}

export interface Hole {
  start: bigint;
  last: bigint;
}

const FANOUT = 64;
const HALF = FANOUT / 2;
/**
 * A node merges with a neighbour only below a quarter full: merging at half would make a tree built
 * by ascending inserts (every leaf exactly half full) merge on each remove and split on the next insert.
 */
const MIN_FILL = FANOUT / 4;

interface Leaf<T extends Span> {
  leaf: true;
  items: T[];
  /** items[i].iova as float64: binary searches run over this unboxed array and settle ties exactly. */
  keyNums: number[];
  /** gaps[i]: size of the hole between the previous area (in the whole tree) and items[i]. */
  gaps: bigint[];
  /** The same gaps as float64, for pruning without conversions. */
  gapNums: number[];
  maxGap: number;
}

interface Branch<T extends Span> {
  leaf: false;
  children: Node<T>[];
  /** Smallest start address in each child. */
  mins: bigint[];
  /** The same as float64 (see Leaf.keyNums). */
  minNums: number[];
  /** Each child's maxGap, kept here so that a branch's maximum never reads its children's objects. */
  childGaps: number[];
  maxGap: number;
}

type Node<T extends Span> = Leaf<T> | Branch<T>;

/** One step of a root-to-leaf path: the node and the child/item index taken in it. */
interface Step<T extends Span> {
  node: Node<T>;
  index: number;
}

function maxOf(values: readonly number[]): number {
  let m = -1;
  for (let i = 0; i < values.length; i++) if (values[i]! > m) m = values[i]!;
  return m;
}

function nodeMaxGap<T extends Span>(node: Node<T>): number {
  return node.maxGap;
}

/** The largest gap under a node, from its own arrays (no allocation: this runs on every change). */
function computeMaxGap<T extends Span>(node: Node<T>): number {
  return maxOf(node.leaf ? node.gapNums : node.childGaps);
}

/** A branch over these children, with its keys and maxima. */
function branchOf<T extends Span>(children: Node<T>[]): Branch<T> {
  const mins = children.map(minOf);
  const childGaps = children.map(nodeMaxGap);
  return { leaf: false, children, mins, minNums: mins.map(Number), childGaps, maxGap: maxOf(childGaps) };
}

/** Re-reads every child's key and maximum after the children of a branch were rearranged. */
function resync<T extends Span>(b: Branch<T>): void {
  b.mins = b.children.map(minOf);
  b.minNums = b.mins.map(Number);
  b.childGaps = b.children.map(nodeMaxGap);
  b.maxGap = maxOf(b.childGaps);
}

function emptyLeaf<T extends Span>(): Leaf<T> {
  return { leaf: true, items: [], keyNums: [], gaps: [], gapNums: [], maxGap: -1 };
}

export class IovaTree<T extends Span> {
  private root: Node<T> = emptyLeaf<T>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Builds a tree from areas sorted by iova and not overlapping, in O(n) (restart from the database). */
  static fromSorted<T extends Span>(sorted: readonly T[]): IovaTree<T> {
    const tree = new IovaTree<T>();
    if (sorted.length === 0) return tree;
    let level: Node<T>[] = [];
    let prevLast = -1n;
    for (let i = 0; i < sorted.length; i += FANOUT - 8) {
      // Leave some room in every node so the first inserts after a restart do not split at once.
      const items = sorted.slice(i, i + FANOUT - 8);
      const gaps = items.map((it) => {
        const g = it.iova - prevLast - 1n;
        prevLast = it.last;
        return g;
      });
      const gapNums = gaps.map(Number);
      level.push({ leaf: true, items, keyNums: items.map((it) => Number(it.iova)), gaps, gapNums, maxGap: maxOf(gapNums) });
    }
    while (level.length > 1) {
      const next: Node<T>[] = [];
      for (let i = 0; i < level.length; i += FANOUT - 8) {
        const children = level.slice(i, i + FANOUT - 8);
        next.push(branchOf(children));
      }
      level = next;
    }
    tree.root = level[0]!;
    tree.count = sorted.length;
    return tree;
  }

  /** The area containing address `a`, if any. */
  find(a: bigint): T | undefined {
    const floor = this.floor(a);
    return floor !== undefined && floor.last >= a ? floor : undefined;
  }

  /** The area with the greatest start <= a. */
  floor(a: bigint): T | undefined {
    let node = this.root;
    while (!node.leaf) node = node.children[Math.max(0, upperBoundMins(node, a) - 1)]!;
    const i = upperBoundItems(node, a) - 1;
    return i >= 0 ? node.items[i] : undefined;
  }

  /** True when any area meets [start, last]. */
  overlaps(start: bigint, last: bigint): boolean {
    const f = this.floor(last);
    return f !== undefined && f.last >= start;
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
    const below = this.floor(last);
    if (below === undefined || below.last < start) return [];
    if (below.iova <= start) return [below];
    return [...this.meeting(start, last)];
  }

  /**
   * Areas in address order starting with the first one at or after `start` (or, with
   * `includeContaining`, the one containing `start`).
   */
  *from(start = 0n, includeContaining = false): Generator<T> {
    const path = this.pathTo(start);
    const leafStep = path[path.length - 1]!;
    let leaf = leafStep.node as Leaf<T>;
    // pathTo picks the leaf whose first start is <= `start` (or the leftmost leaf), so only items[i - 1]
    // can start at or contain `start`.
    let i = leafStep.index;
    const prev = leaf.items[i - 1];
    if (prev && (prev.iova === start || (includeContaining && prev.last >= start))) i--;
    for (;;) {
      while (i < leaf.items.length) yield leaf.items[i++]!;
      const next = this.nextLeaf(path);
      if (!next) return;
      leaf = next;
      i = 0;
    }
  }

  /** Inserts an area; the caller has checked that it overlaps nothing. */
  insert(area: T): void {
    const path = this.pathTo(area.iova);
    const step = path[path.length - 1]!;
    const leaf = step.node as Leaf<T>;
    const i = step.index;
    const gap = area.iova - this.lastBefore(path, i) - 1n;
    leaf.items.splice(i, 0, area);
    leaf.keyNums.splice(i, 0, Number(area.iova));
    leaf.gaps.splice(i, 0, gap);
    leaf.gapNums.splice(i, 0, Number(gap));
    this.count++;
    // The area after the new one now has a smaller hole below it.
    this.setFollowerGap(path, i + 1, area.last);
    this.fixUp(path);
  }

  /** Removes the area starting at `iova`; returns it, or undefined when there is none. */
  remove(iova: bigint): T | undefined {
    const path = this.pathTo(iova);
    const step = path[path.length - 1]!;
    const leaf = step.node as Leaf<T>;
    const i = step.index - 1;
    if (i < 0 || leaf.items[i]!.iova !== iova) return undefined;
    const area = leaf.items.splice(i, 1)[0]!;
    leaf.keyNums.splice(i, 1);
    const gap = leaf.gaps.splice(i, 1)[0]!;
    leaf.gapNums.splice(i, 1);
    step.index = i;
    this.count--;
    // The next area's hole grows to reach down to the area before the removed one.
    this.setFollowerGap(path, i, area.iova - gap - 1n);
    this.fixUp(path);
    return area;
  }

  /**
   * The lowest hole part inside [windowStart, windowLast] where `fits` accepts a placement, trying
   * only holes of at least `minSize` bytes beyond the first. `fits` receives the clipped hole and
   * answers the placement's start, or undefined.
   */
  firstFit(windowStart: bigint, windowLast: bigint, minSize: bigint, fits: (hole: Hole) => bigint | undefined): bigint | undefined {
    // The hole containing windowStart (or starting right after the area containing it).
    const containing = this.find(windowStart);
    let holeStart = containing ? containing.last + 1n : windowStart;
    if (containing && containing.last === U64_MAX) return undefined;
    for (;;) {
      if (holeStart > windowLast) return undefined;
      const next = this.firstAfter(holeStart);
      const holeLast = next ? next.iova - 1n : U64_MAX;
      if (holeLast >= holeStart) {
        const clipped = { start: holeStart, last: holeLast < windowLast ? holeLast : windowLast };
        const at = fits(clipped);
        if (at !== undefined) return at;
      }
      if (!next || next.last >= windowLast) return undefined;
      // Jump to the next hole big enough to matter: the first area after `next` with a gap >= minSize.
      const candidate = this.firstWithGap(next.iova, minSize);
      if (candidate) {
        holeStart = candidate.area.iova - candidate.gap;
      } else {
        const lastArea = this.lastArea();
        if (!lastArea || lastArea.last === U64_MAX) return undefined;
        // Only the hole above the last area is left; it is worth a look only if it is big enough.
        if (U64_MAX - lastArea.last < minSize) return undefined;
        holeStart = lastArea.last + 1n;
      }
    }
  }

  /** Checks the structure (tests only): order, no overlap, gaps and maxima, counts. */
  checkInvariants(): void {
    let prevLast = -1n;
    let n = 0;
    const visit = (node: Node<T>, depth: number, depths: Set<number>): void => {
      if (node.leaf) {
        depths.add(depth);
        node.items.forEach((it, i) => {
          if (it.iova <= prevLast) throw new Error(`order/overlap at ${it.iova}`);
          if (node.gaps[i] !== it.iova - prevLast - 1n) throw new Error(`gap at ${it.iova}`);
          prevLast = it.last;
          n++;
        });
        if (node.gapNums.some((g, i) => g !== Number(node.gaps[i]))) throw new Error('leaf gapNums');
        if (node.keyNums.some((k, i) => k !== Number(node.items[i]!.iova))) throw new Error('leaf keyNums');
        if (node.maxGap !== maxOf(node.gaps.map(Number))) throw new Error('leaf maxGap');
        return;
      }
      if (node.children.length === 0) throw new Error('empty branch');
      node.children.forEach((c, i) => {
        if (minOf(c) !== node.mins[i] || node.minNums[i] !== Number(node.mins[i])) throw new Error('mins');
        if (node.childGaps[i] !== c.maxGap) throw new Error('childGaps');
        visit(c, depth + 1, depths);
      });
      if (node.maxGap !== maxOf(node.children.map(nodeMaxGap))) throw new Error('branch maxGap');
    };
    const depths = new Set<number>();
    visit(this.root, 0, depths);
    if (depths.size > 1) throw new Error('unbalanced');
    if (n !== this.count) throw new Error('count');
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Path to the leaf where `iova` belongs; the leaf step's index is the first item with iova > key. */
  private pathTo(iova: bigint): Step<T>[] {
    const path: Step<T>[] = [];
    let node = this.root;
    while (!node.leaf) {
      const index = Math.max(0, upperBoundMins(node, iova) - 1);
      path.push({ node, index });
      node = node.children[index]!;
    }
    path.push({ node, index: upperBoundItems(node, iova) });
    return path;
  }

  /** The last address of the area before position i of the path's leaf, or -1 when there is none. */
  private lastBefore(path: Step<T>[], i: number): bigint {
    const leaf = path[path.length - 1]!.node as Leaf<T>;
    if (i > 0) return leaf.items[i - 1]!.last;
    const prev = this.prevLeaf(path);
    return prev ? prev.items[prev.items.length - 1]!.last : -1n;
  }

  /**
   * Recomputes the gap of the area at position j of the path's leaf (or, past the leaf's end, of the
   * first area of the next leaf) given the last address below it (-1 for none).
   */
  private setFollowerGap(path: Step<T>[], j: number, lastBelow: bigint): void {
    const leaf = path[path.length - 1]!.node as Leaf<T>;
    if (j < leaf.items.length) {
      setGap(leaf, j, leaf.items[j]!.iova - lastBelow - 1n);
      return;
    }
    const next = path.map((s) => ({ ...s }));
    const nextLeaf = this.nextLeaf(next);
    if (!nextLeaf) return;
    setGap(nextLeaf, 0, nextLeaf.items[0]!.iova - lastBelow - 1n);
    // Only maxima change on that path; fixUp of the main path restores the structure afterwards.
    for (let level = next.length - 1; level >= 0; level--) {
      const node = next[level]!.node;
      node.maxGap = computeMaxGap(node);
      if (level > 0) (next[level - 1]!.node as Branch<T>).childGaps[next[level - 1]!.index] = node.maxGap;
    }
  }

  /**
   * Restores sizes, mins and maxima along a path after its leaf changed. It stops climbing as soon as
   * a level changed neither shape, smallest key nor largest gap: nothing above can have changed.
   */
  private fixUp(path: Step<T>[]): void {
    // A split or merge below already refreshed this level's maximum, so "unchanged" here says
    // nothing about the levels above: keep climbing.
    let childReshaped = false;
    for (let level = path.length - 1; level >= 0; level--) {
      const { node } = path[level]!;
      const parent = level > 0 ? path[level - 1]! : undefined;
      const oldMax = node.maxGap;
      node.maxGap = computeMaxGap(node);
      const size = node.leaf ? node.items.length : node.children.length;
      let structural = false;
      if (size > FANOUT) {
        this.split(node, parent);
        structural = true;
      } else if (size < MIN_FILL && parent && (parent.node as Branch<T>).children.length > 1) {
        this.rebalance(node, parent);
        structural = true;
      }
      let minChanged = false;
      if (parent) {
        const p = parent.node as Branch<T>;
        const idx = p.children[parent.index] === node ? parent.index : p.children.indexOf(node);
        if (idx >= 0) {
          p.childGaps[idx] = node.maxGap;
          const min = minOf(node);
          if (p.mins[idx] !== min) {
            p.mins[idx] = min;
            p.minNums[idx] = Number(min);
            minChanged = true;
          }
        }
      }
      if (!structural && !childReshaped && !minChanged && node.maxGap === oldMax) break;
      childReshaped = structural;
    }
    // Drop empty/degenerate roots.
    while (!this.root.leaf && this.root.children.length === 1) this.root = this.root.children[0]!;
    if (!this.root.leaf && this.root.children.length === 0) this.root = emptyLeaf<T>();
  }

  private split(node: Node<T>, parent: Step<T> | undefined): void {
    let right: Node<T>;
    if (node.leaf) {
      right = { leaf: true, items: node.items.splice(HALF), keyNums: node.keyNums.splice(HALF), gaps: node.gaps.splice(HALF), gapNums: node.gapNums.splice(HALF), maxGap: -1 };
    } else {
      right = branchOf(node.children.splice(HALF));
      resync(node);
    }
    node.maxGap = computeMaxGap(node);
    right.maxGap = computeMaxGap(right);
    if (!parent) {
      this.root = branchOf([node, right]);
      return;
    }
    const p = parent.node as Branch<T>;
    p.children.splice(p.children.indexOf(node) + 1, 0, right);
    resync(p);
  }

  /** Merges an underfull node with a sibling, or borrows from it. */
  private rebalance(node: Node<T>, parent: Step<T>): void {
    const p = parent.node as Branch<T>;
    const idx = p.children.indexOf(node);
    if (p.children.length < 2) return;
    const leftIdx = idx > 0 ? idx - 1 : idx;
    const left = p.children[leftIdx]!;
    const right = p.children[leftIdx + 1]!;
    if (left.leaf && right.leaf) {
      left.items.push(...right.items.splice(0));
      left.keyNums.push(...right.keyNums.splice(0));
      left.gaps.push(...right.gaps.splice(0));
      left.gapNums.push(...right.gapNums.splice(0));
    } else if (!left.leaf && !right.leaf) {
      left.children.push(...right.children.splice(0));
      resync(left);
    }
    p.children.splice(leftIdx + 1, 1);
    // A merge may overfill: split again.
    const size = left.leaf ? left.items.length : left.children.length;
    if (size > FANOUT) this.split(left, parent);
    else left.maxGap = computeMaxGap(left);
    resync(p);
  }

  private nextLeaf(path: Step<T>[]): Leaf<T> | undefined {
    // Advance the path to the next leaf, in place.
    for (let level = path.length - 2; level >= 0; level--) {
      const step = path[level]!;
      const branch = step.node as Branch<T>;
      if (step.index + 1 < branch.children.length) {
        step.index++;
        let node = branch.children[step.index]!;
        for (let l = level + 1; l < path.length; l++) {
          path[l] = { node, index: 0 };
          if (!node.leaf) node = node.children[0]!;
        }
        return path[path.length - 1]!.node as Leaf<T>;
      }
    }
    return undefined;
  }

  private prevLeaf(path: Step<T>[]): Leaf<T> | undefined {
    for (let level = path.length - 2; level >= 0; level--) {
      const step = path[level]!;
      if (step.index > 0) {
        let node = (step.node as Branch<T>).children[step.index - 1]!;
        while (!node.leaf) node = node.children[node.children.length - 1]!;
        return node.items.length > 0 ? node : undefined;
      }
    }
    return undefined;
  }

  private firstAfter(a: bigint): T | undefined {
    for (const area of this.from(a)) if (area.iova >= a) return area;
    return undefined;
  }

  private lastArea(): T | undefined {
    let node = this.root;
    while (!node.leaf) node = node.children[node.children.length - 1]!;
    return node.items[node.items.length - 1];
  }

  /** The first area with iova > after whose gap is at least minSize, with that gap. */
  private firstWithGap(after: bigint, minSize: bigint): { area: T; gap: bigint } | undefined {
    const need = Number(minSize);
    const search = (node: Node<T>): { area: T; gap: bigint } | undefined => {
      if (node.maxGap < need) return undefined;
      if (node.leaf) {
        for (let i = upperBoundItems(node, after); i < node.items.length; i++) {
          if (node.gaps[i]! >= minSize) return { area: node.items[i]!, gap: node.gaps[i]! };
        }
        return undefined;
      }
      for (let c = Math.max(0, upperBoundMins(node, after) - 1); c < node.children.length; c++) {
        const found = search(node.children[c]!);
        if (found) return found;
      }
      return undefined;
    };
    return search(this.root);
  }
}

function setGap<T extends Span>(leaf: Leaf<T>, i: number, gap: bigint): void {
  leaf.gaps[i] = gap;
  leaf.gapNums[i] = Number(gap);
}

function minOf<T extends Span>(node: Node<T>): bigint {
  // A branch's mins are kept current from below, so its first one is its smallest key.
  if (!node.leaf) return node.mins[0] ?? 0n;
  return node.items[0]?.iova ?? 0n;
}

/**
 * First index whose key is > k, searching the float64 copies and settling ties exactly. Rounding to
 * float64 is monotonic, so a float strictly below (above) k's float means a key below (above) k; only
 * equal floats can hide the exact order, and they are checked against the bigint keys.
 */
function upperBoundNums(nums: readonly number[], k: bigint, exact: (i: number) => bigint): number {
  const kn = Number(k);
  let lo = 0;
  let hi = nums.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (nums[mid]! <= kn) lo = mid + 1;
    else hi = mid;
  }
  while (lo > 0 && nums[lo - 1] === kn && exact(lo - 1) > k) lo--;
  return lo;
}

function upperBoundMins<T extends Span>(node: Branch<T>, k: bigint): number {
  return upperBoundNums(node.minNums, k, (i) => node.mins[i]!);
}

function upperBoundItems<T extends Span>(leaf: Leaf<T>, k: bigint): number {
  return upperBoundNums(leaf.keyNums, k, (i) => leaf.items[i]!.iova);
}
