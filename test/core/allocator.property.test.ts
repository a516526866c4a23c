import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Domain, Range } from '../../src/core/model.js';
import { coreFixture, errnoOf, MOCK_DOMAIN, P, U64_MAX, type CoreFixture, type StoreKind } from './fixture.js';

/**
 * Random sequences of map / unmap / copy / allowed-ranges against a deliberately simple reference
 * model of SPEC 4-5 (iommufd rules): linear scans, holes enumerated from scratch. Both must give the
 * same answer (result or errno) at every step and end in the same state, also after restarts from
 * the database.
 */
interface RefMapping {
  iova: bigint;
  last: bigint;
  ua: bigint;
  read: boolean;
  write: boolean;
  writable: boolean;
  /** Which pinned pages it uses: a map makes new ones (charged), a copy shares its source's. */
  pages: number;
}

/** Pinned bytes per pages object, for the maxPinnedBytes quota (U64_MAX by default). */
const pinned = new Map<number, bigint>();
let nextPages = 1;
function charged(spaces: RefSpace[]): bigint {
  const live = new Set(spaces.flatMap((s) => s.maps.map((m) => m.pages)));
  let total = 0n;
  for (const id of live) total += pinned.get(id)!;
  return total;
}

class RefSpace {
  maps: RefMapping[] = [];
  allowed: Range[] = [];
  constructor(readonly domain: Domain | null) {}
  get align(): bigint {
    return this.domain ? this.domain.minPageSize : 1n;
  }
  reservedHit(s: bigint, l: bigint): boolean {
    if (!this.domain) return false;
    return s < this.domain.aperture.start || l > this.domain.aperture.last;
  }
  overlapping(s: bigint, l: bigint): RefMapping[] {
    return this.maps.filter((m) => m.iova <= l && m.last >= s);
  }
  insert(m: RefMapping): void {
    this.maps.push(m);
    this.maps.sort((a, b) => (a.iova < b.iova ? -1 : 1));
  }
}

class Refusal extends Error {
  constructor(readonly errno: string) {
    super(errno);
  }
}
const no = (errno: string): never => {
  throw new Refusal(errno);
};

function refPlace(sp: RefSpace, iova: bigint | undefined, length: bigint, ua: bigint, offsets: bigint[]): bigint {
  if (ua + length > U64_MAX) no('EOVERFLOW');
  if (length === 0n) no('EINVAL');
  if (length % sp.align !== 0n) no('EINVAL');
  if (iova === undefined) {
    if (offsets.some((o) => o % sp.align !== 0n)) no('EINVAL');
    if (length >= 1n << 63n) no('EOVERFLOW');
    let pow = 1n;
    while (pow < length) pow *= 2n;
    let low = 1n;
    if (ua !== 0n) while (ua % (low * 2n) === 0n) low *= 2n;
    const a = ua === 0n ? pow : low < pow ? low : pow;
    if (a < sp.align) no('EINVAL');
    const lo = P;
    const hi = U64_MAX - P;
    const windows = sp.allowed.length ? [...sp.allowed].sort((x, y) => (x.start < y.start ? -1 : 1)) : [{ start: lo, last: hi }];
    for (const w of windows) {
      let s = w.start > lo ? w.start : lo;
      const e = w.last < hi ? w.last : hi;
      // Walk every hole of (reserved ∪ mappings) inside [s, e] in order.
      const blocks: Range[] = sp.maps.map((m) => ({ start: m.iova, last: m.last }));
      if (sp.domain) {
        if (sp.domain.aperture.start > 0n) blocks.push({ start: 0n, last: sp.domain.aperture.start - 1n });
        blocks.push({ start: sp.domain.aperture.last + 1n, last: U64_MAX });
      }
      blocks.sort((x, y) => (x.start < y.start ? -1 : 1));
      const holes: Range[] = [];
      for (const b of blocks) {
        if (b.last < s) continue;
        if (b.start > e) break;
        if (b.start > s) holes.push({ start: s, last: b.start - 1n });
        s = b.last + 1n;
        if (s > e) break;
      }
      if (s <= e) holes.push({ start: s, last: e });
      for (const h of holes) {
        if (h.start > e) continue;
        const off = ua % P;
        let at = h.start;
        if (at % a !== 0n) at += a - (at % a);
        at = at - (at % P) + (at % P) + 0n;
        at = (at & ~(a - 1n)) | off;
        if (h.start + a - 1n > U64_MAX) continue;
        if (at >= h.last || h.last - at < length - 1n) continue;
        return at;
      }
    }
    return no('ENOSPC');
  }
  if (iova % sp.align !== 0n) no('EINVAL');
  if (iova + length - 1n > U64_MAX) no('EOVERFLOW');
  if (offsets.some((o) => o % sp.align !== 0n)) no('EINVAL');
  if (sp.reservedHit(iova, iova + length - 1n)) no('EINVAL');
  if (sp.overlapping(iova, iova + length - 1n).length) no('EEXIST');
  return iova;
}

type Op =
  | { k: 'map'; s: number; iova?: bigint; length: bigint; ua: bigint; read: boolean; write: boolean }
  | { k: 'unmap'; s: number; iova: bigint; length: bigint; pick?: number }
  | { k: 'unmapAll'; s: number }
  | { k: 'copy'; src: number; dst: number; srcIova: bigint; length: bigint; dstIova?: bigint; write: boolean; pick?: number }
  | { k: 'allow'; s: number; ranges: Range[] }
  | { k: 'restart' };

function arbOps(base: bigint, span: bigint): fc.Arbitrary<Op[]> {
  const addr = fc.oneof(
    { weight: 8, arbitrary: fc.bigInt({ min: 0n, max: span }).map((x) => base + (x / 0x200n) * 0x200n) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: span }).map((x) => base + x) },
    { weight: 1, arbitrary: fc.bigInt({ min: U64_MAX - 0x4000n, max: U64_MAX }) },
  );
  const len = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 16 }).map((n) => BigInt(n) * 0x800n) },
    { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 0x3000n }) },
    { weight: 1, arbitrary: fc.constantFrom(U64_MAX, U64_MAX - 1n, 1n << 63n) },
  );
  const ua = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1n << 40n }).map((x) => (x / 0x800n) * 0x800n), fc.bigInt({ min: 0n, max: 1n << 40n }));
  const s = fc.integer({ min: 0, max: 1 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 10, arbitrary: fc.record({ k: fc.constant('map' as const), s, iova: fc.option(addr, { nil: undefined }), length: len, ua, read: fc.boolean(), write: fc.boolean() }, { requiredKeys: ['k', 's', 'length', 'ua', 'read', 'write'] }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('unmap' as const), s, iova: addr, length: len, pick: fc.option(fc.nat(), { nil: undefined }) }, { requiredKeys: ['k', 's', 'iova', 'length'] }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('unmapAll' as const), s }) },
    {
      weight: 4,
      arbitrary: fc.record(
        { k: fc.constant('copy' as const), src: s, dst: s, srcIova: addr, length: len, dstIova: fc.option(addr, { nil: undefined }), write: fc.boolean(), pick: fc.option(fc.nat(), { nil: undefined }) },
        { requiredKeys: ['k', 'src', 'dst', 'srcIova', 'length', 'write'] },
      ),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('allow' as const), s, ranges: fc.array(fc.record({ start: addr, last: addr }), { maxLength: 3 }) }) },
    { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
  );
  return fc.array(op, { maxLength: 60 });
}

/**
 * With `pick`, an unmap or copy is aimed at existing mappings (so success paths are hit as often as
 * refusals): unmap covers the picked mapping exactly, copy starts inside it.
 */
function aimAtMappings(o: Op, ref: RefSpace[]): Op {
  if (o.k === 'unmap' && o.pick !== undefined) {
    const maps = ref[o.s]!.maps;
    const m = maps[o.pick % Math.max(1, maps.length)];
    if (!m) return o;
    // Odd picks cover the mapping exactly; even ones start at it with the drawn length, which may
    // stop inside it or run past it into the next.
    return o.pick % 2 === 1 ? { ...o, iova: m.iova, length: m.last - m.iova + 1n } : { ...o, iova: m.iova };
  }
  if (o.k === 'copy' && o.pick !== undefined) {
    const maps = ref[o.src]!.maps;
    const m = maps[o.pick % Math.max(1, maps.length)];
    if (!m) return o;
    const span = m.last - m.iova + 1n;
    const length = o.length > 0n && o.length < U64_MAX ? ((o.length - 1n) % span) + 1n : o.length;
    return { ...o, srcIova: m.iova + (BigInt(o.pick) % span) % (span - (length < span ? length : span) + 1n), length };
  }
  return o;
}

function refRun(spaces: RefSpace[], o: Op): unknown {
  if (o.k === 'map') {
    if (!o.read && !o.write) no('EINVAL');
    if ((o.iova !== undefined && o.iova >= U64_MAX) || o.length >= U64_MAX) no('EOVERFLOW');
    const sp = spaces[o.s]!;
    const iova = refPlace(sp, o.iova, o.length, o.ua, [o.ua % P]);
    if (charged(spaces) + o.length > U64_MAX) no('ENOMEM');
    pinned.set(nextPages, o.length);
    sp.insert({ iova, last: iova + o.length - 1n, ua: o.ua, read: o.read, write: o.write, writable: o.write, pages: nextPages++ });
    return iova;
  }
  if (o.k === 'unmap') {
    const sp = spaces[o.s]!;
    if (o.iova === 0n && o.length === U64_MAX) return refRun(spaces, { k: 'unmapAll', s: o.s });
    if (o.iova >= U64_MAX || o.length >= U64_MAX) no('EOVERFLOW');
    if (o.length === 0n) no('EINVAL');
    if (o.iova + o.length - 1n > U64_MAX) no('EOVERFLOW');
    const last = o.iova + o.length - 1n;
    const hit = sp.overlapping(o.iova, last);
    if (hit.length === 0 || hit.some((m) => m.iova < o.iova || m.last > last)) no('ENOENT');
    sp.maps = sp.maps.filter((m) => !hit.includes(m));
    return hit.reduce((n, m) => n + m.last - m.iova + 1n, 0n);
  }
  if (o.k === 'unmapAll') {
    const sp = spaces[o.s]!;
    const n = sp.maps.reduce((t, m) => t + m.last - m.iova + 1n, 0n);
    sp.maps = [];
    return n;
  }
  if (o.k === 'copy') {
    if (o.length >= U64_MAX || o.srcIova >= U64_MAX || (o.dstIova !== undefined && o.dstIova >= U64_MAX)) no('EOVERFLOW');
    const src = spaces[o.src]!;
    if (o.length === 0n) no('EINVAL');
    if (o.srcIova + o.length - 1n > U64_MAX) no('EOVERFLOW');
    const last = o.srcIova + o.length - 1n;
    const pieces: RefMapping[] = [];
    let cur = o.srcIova;
    for (const m of src.maps) {
      if (m.last < cur) continue;
      if (m.iova > cur) break;
      const end = m.last < last ? m.last : last;
      pieces.push({ iova: cur, last: end, ua: m.ua + (cur - m.iova), read: true, write: o.write, writable: m.writable, pages: m.pages });
      cur = end + 1n;
      if (end === last) break;
    }
    if (pieces.length === 0 || pieces[pieces.length - 1]!.last !== last) no('ENOENT');
    const dst = spaces[o.dst]!;
    const at = refPlace(dst, o.dstIova, o.length, pieces[0]!.ua, pieces.map((p) => p.ua % P));
    if (o.write && pieces.some((p) => !p.writable)) no('EPERM');
    let cursor = at;
    for (const p of pieces) {
      const n = p.last - p.iova + 1n;
      dst.insert({ iova: cursor, last: cursor + n - 1n, ua: p.ua, read: true, write: o.write, writable: p.writable, pages: p.pages });
      cursor += n;
    }
    return at;
  }
  if (o.k === 'allow') {
    const sp = spaces[o.s]!;
    if (o.ranges.some((r) => r.start >= r.last)) no('EINVAL');
    const sorted = [...o.ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start <= sorted[i - 1]!.last) no('EINVAL');
    if (sorted.some((r) => sp.reservedHit(r.start, r.last))) no('EADDRINUSE');
    sp.allowed = sorted;
    return sorted.length;
  }
  return null;
}

function realRun(f: CoreFixture, ids: number[], o: Op): unknown {
  const a = f.core;
  const who = f.alice;
  switch (o.k) {
    case 'map':
      return a.mappings.map(who, ids[o.s]!, { iova: o.iova, length: o.length, userAddress: o.ua, read: o.read, write: o.write }).iova;
    case 'unmap':
      return a.mappings.unmap(who, ids[o.s]!, { iova: o.iova, length: o.length });
    case 'unmapAll':
      return a.mappings.unmap(who, ids[o.s]!, { all: true });
    case 'copy':
      return a.mappings.copy(who, ids[o.dst]!, { srcIoasId: ids[o.src]!, srcIova: o.srcIova, length: o.length, dstIova: o.dstIova, read: true, write: o.write })[0]!.iova;
    case 'allow':
      return a.mappings.setAllowedRanges(who, ids[o.s]!, o.ranges).length;
    case 'restart':
      f.restart();
      return null;
  }
}

function outcome(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Refusal) return err.errno;
    const errno = errnoOf(() => {
      throw err;
    });
    return errno;
  }
}

function check(domain: Domain | null, ops: Op[], kind: StoreKind = 'sqlite'): void {
  const f = coreFixture('device-first', ':memory:', undefined, kind);
  const ctx = f.core.contexts.create(f.alice, {});
  const ids = [f.core.ioas.create(f.alice, ctx.id).id, f.core.ioas.create(f.alice, ctx.id).id];
  if (domain) for (const id of ids) f.core.ioas.get(f.alice, id).addDomain(domain);
  const ref = [new RefSpace(domain), new RefSpace(domain)];
  pinned.clear();
  const pagesIds = new Map<number, number>(); // real pages id -> reference pages id, matched on first sight
  const state = () =>
    ids.map((id) =>
      [...f.core.ioas.get(f.alice, id).mappings.from()].map((m) => {
        if (!pagesIds.has(m.pages.id)) pagesIds.set(m.pages.id, pagesIds.size);
        return { iova: m.iova, last: m.last, ua: m.userAddress, read: m.read, write: m.write, writable: m.pages.writable, pages: pagesIds.get(m.pages.id)! };
      }),
    );
  const refState = () => {
    const refIds = new Map<number, number>();
    return ref.map((r) =>
      r.maps.map((m) => {
        if (!refIds.has(m.pages)) refIds.set(m.pages, refIds.size);
        return { ...m, pages: refIds.get(m.pages)! };
      }),
    );
  };
  ops.forEach((raw, step) => {
    const o = aimAtMappings(raw, ref);
    const want = outcome(() => refRun(ref, o));
    const got = outcome(() => realRun(f, ids, o));
    expect(got, `step ${step}: ${JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`).toEqual(want);
    if (o.k === 'restart' && domain) for (const id of ids) f.core.ioas.get(f.alice, id).addDomain(domain);
  });
  expect(state()).toEqual(refState());
  expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(charged(ref));
  f.restart();
  pagesIds.clear();
  expect(state()).toEqual(refState());
  expect(f.core.quotas.usageFor('alice').pinnedBytes).toBe(charged(ref));
  ids.forEach((id, i) => expect(f.core.ioas.get(f.alice, id).allowed).toEqual(ref[i]!.allowed));
  for (const id of ids) f.core.ioas.get(f.alice, id).mappings.checkInvariants();
  expect(f.check()).toMatchObject({ ok: true, violations: [] });
}

describe('allocator against a reference model (iommufd rules)', () => {
  it('no domain: alignment 1, the whole address space', () => {
    fc.assert(fc.property(arbOps(0n, 64n * P), (ops) => check(null, ops)), { numRuns: 300 });
  });

  it('a mock domain: 2 KiB alignment and an aperture', () => {
    fc.assert(fc.property(arbOps(MOCK_DOMAIN.aperture.start - 8n * P, 64n * P), (ops) => check(MOCK_DOMAIN, ops)), { numRuns: 300 });
  });
});

describe('the same reference model on the in-memory fake of the ports (the ports are all the core needs)', () => {
  it('no domain', () => {
    fc.assert(fc.property(arbOps(0n, 64n * P), (ops) => check(null, ops, 'memory')), { numRuns: 100 });
  });

  it('a mock domain', () => {
    fc.assert(fc.property(arbOps(MOCK_DOMAIN.aperture.start - 8n * P, 64n * P), (ops) => check(MOCK_DOMAIN, ops, 'memory')), { numRuns: 100 });
  });
});
