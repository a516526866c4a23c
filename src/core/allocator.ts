import { fail, type Blocker } from './errors.js';
import { IoasidAllocator } from './ioasid.js';
import { IovaSpace } from './iova-space.js';
import { SharedPages } from './mapping-rows.js';
import {
  checkAllowedRanges,
  checkIommufdMapArgs,
  checkType1Aperture,
  fmt,
  PAGE_SIZE,
  placeIommufd,
  placeType1,
  planUnmap,
  type MapArgs,
  type UnmapArgs,
} from './map-rules.js';
import type { Context, Mapping, Pages, PolicyName, Quotas, Range, Role, RuleSet } from './model.js';
import { ruleSetFor } from './model.js';
import type { AllocatorPort, AuditPort } from './ports.js';
import { U64_MAX } from './u64.js';

/** Who is asking. Users see only their own contexts and what hangs off them; admins see all. */
export interface Caller {
  id: string;
  role: Role;
}

export interface AllocatorDeps {
  store: AllocatorPort & AuditPort & { transaction<T>(fn: () => T): T };
  ioasidRange: { min: number; max: number };
  /** Epoch milliseconds. */
  now: () => number;
  newId: (prefix: string) => string;
  policy: () => PolicyName;
  quotasOf: (principalId: string) => Quotas;
}

export interface NewContext {
  name?: string | undefined;
  leaseSeconds?: number | undefined;
}

export interface CopyArgs {
  srcIoasId: number;
  srcIova: bigint;
  length: bigint;
  dstIova?: bigint | undefined;
  read: boolean;
  write: boolean;
}

interface Usage {
  ioas: number;
  mappings: number;
  pinnedBytes: bigint;
}

/** Memory changes made during a mutation, undone in reverse when the mutation (or its commit) fails. */
export class UndoLog {
  private readonly steps: (() => void)[] = [];
  push(step: () => void): void {
    this.steps.push(step);
  }
  rollback(): void {
    for (let i = this.steps.length - 1; i >= 0; i--) this.steps[i]!();
  }
}

/**
 * Contexts, IOASIDs and DMA mappings: the allocator core (SPEC 2, 4, 5). State lives in memory for
 * speed (an IOVA index per address space) and is written through to the store in the same
 * synchronous step, inside one transaction; on start it is rebuilt from the store.
 */
export class Allocator {
  private readonly contexts = new Map<string, Context>();
  private readonly spaces = new Map<number, IovaSpace>();
  private readonly usage = new Map<string, Usage>();
  private readonly ids: IoasidAllocator;
  private nextPagesId = 1;
  private readonly sharedPages = new SharedPages();
  /** Holders of an ioas other than its mappings (groups, devices, hwpts): destroy is EBUSY while any. */
  private readonly holders = new Map<number, Set<string>>();
  /** Run first when a context is released, to undo what the ownership policies hold for it. */
  private readonly releaseHooks: ((contextId: string, undo: UndoLog) => void)[] = [];

  constructor(private readonly deps: AllocatorDeps) {
    const loaded = deps.store.loadAllocator();
    for (const c of loaded.contexts) this.contexts.set(c.id, c);
    // Pages by id (ids are small dense integers): a plain array is far cheaper than a Map at 1M.
    const pages: Pages[] = [];
    for (const row of loaded.ioas) {
      const ctx = this.contexts.get(row.contextId);
      if (!ctx) continue;
      const space = new IovaSpace(row.id, row.contextId, ctx.principalId, row.createdAt, this.sharedPages);
      space.allowed = row.allowed;
      this.spaces.set(row.id, space);
      this.usageOf(ctx.principalId).ioas++;
    }
    // Mappings arrive sorted by (ioas, iova): each space's index is built bottom-up in O(n), streamed.
    let batch: ReturnType<IovaSpace['mappings']['bulkLoad']> | undefined;
    let batchCount = 0;
    let batchIoas = -1;
    const flush = (): void => {
      const space = this.spaces.get(batchIoas);
      if (space && batch) {
        batch.finish();
        this.usageOf(space.principalId).mappings += batchCount;
      }
      batch = undefined;
      batchCount = 0;
    };
    loaded.eachMapping((ioasId, iova, length, userAddress, read, write, pagesId, pagesBytes, pagesWritable) => {
      if (ioasId !== batchIoas) {
        flush();
        batchIoas = ioasId;
        batch = this.spaces.get(ioasId)?.mappings.bulkLoad();
      }
      let p = pages[pagesId];
      if (!p) {
        // Pinned pages are charged once, however many mappings (copies) share them.
        const principalId = this.spaces.get(ioasId)?.principalId ?? '';
        p = { id: pagesId, principalId, bytes: pagesBytes, writable: pagesWritable, refs: 0 };
        pages[pagesId] = p;
        this.usageOf(principalId).pinnedBytes += p.bytes;
        if (pagesId >= this.nextPagesId) this.nextPagesId = pagesId + 1;
      }
      p.refs++;
      batch?.add({ iova, last: iova + length - 1n, length, userAddress, read, write, pages: p });
      batchCount++;
    });
    flush();
    this.ids = new IoasidAllocator(deps.ioasidRange.min, deps.ioasidRange.max, this.spaces.keys());
  }

  // ---- contexts -------------------------------------------------------------------------------

  createContext(caller: Caller, input: NewContext): Context {
    return this.mutate(() => {
      const now = this.deps.now();
      const ctx: Context = {
        id: this.deps.newId('ctx'),
        principalId: caller.id,
        name: input.name ?? null,
        leaseSeconds: input.leaseSeconds ?? null,
        expiresAt: input.leaseSeconds === undefined ? null : now + input.leaseSeconds * 1000,
        createdAt: new Date(now).toISOString(),
      };
      this.deps.store.insertContext(ctx);
      this.contexts.set(ctx.id, ctx);
      return ctx;
    }, (undo, ctx) => undo.push(() => this.contexts.delete(ctx.id)), { actor: caller.id, action: 'context.create', target: (c) => `context:${c.id}` });
  }

  listContexts(caller: Caller): Context[] {
    return [...this.contexts.values()].filter((c) => caller.role === 'admin' || c.principalId === caller.id);
  }

  getContext(caller: Caller, id: string): Context {
    const ctx = this.contexts.get(id);
    // Another principal's context answers exactly as a missing one (SPEC 7).
    if (!ctx || (caller.role !== 'admin' && ctx.principalId !== caller.id)) fail('ENOENT', `context ${id} does not exist`);
    return ctx;
  }

  /** Extends the lease from now; `leaseSeconds` may change its length or give a lease to a context without one. */
  renewContext(caller: Caller, id: string, leaseSeconds?: number): Context {
    const ctx = this.getContext(caller, id);
    const seconds = leaseSeconds ?? ctx.leaseSeconds;
    if (seconds === null) fail('EINVAL', `context ${id} has no lease to renew; give leaseSeconds`);
    const before = { ...ctx };
    return this.mutate(
      () => {
        ctx.leaseSeconds = seconds;
        ctx.expiresAt = this.deps.now() + seconds * 1000;
        this.deps.store.setContextLease(id, ctx.leaseSeconds, ctx.expiresAt);
        return ctx;
      },
      (undo) => undo.push(() => Object.assign(ctx, before)),
      { actor: caller.id, action: 'context.renew', target: () => `context:${id}` },
    );
  }

  deleteContext(caller: Caller, id: string): void {
    this.getContext(caller, id);
    this.transact((undo) => this.release(id, undo), { actor: caller.id, action: 'context.delete', target: `context:${id}` });
  }

  /** Releases every context whose lease ran out by `now`, as a delete would. Returns their ids. */
  reapExpired(now = this.deps.now()): string[] {
    const expired = [...this.contexts.values()].filter((c) => c.expiresAt !== null && c.expiresAt <= now).map((c) => c.id);
    for (const id of expired) {
      this.transact((undo) => this.release(id, undo), { actor: null, action: 'context.expire', target: `context:${id}` });
    }
    return expired;
  }

  /** Releases everything a principal holds (before the principal is deleted). Runs inside the caller's transaction. */
  releasePrincipal(principalId: string): void {
    const mine = [...this.contexts.values()].filter((c) => c.principalId === principalId).map((c) => c.id);
    this.transact((undo) => {
      for (const id of mine) this.release(id, undo);
    });
  }

  /** Everything the context holds goes, in reverse order of dependency; then the context. */
  private release(contextId: string, undo: UndoLog): void {
    const ctx = this.contexts.get(contextId);
    if (!ctx) return;
    for (const hook of this.releaseHooks) hook(contextId, undo);
    for (const space of [...this.spaces.values()].filter((s) => s.contextId === contextId)) {
      // Holders of a context's ioas belong to the same context and go with it.
      this.holders.delete(space.id);
      this.destroySpace(space, undo);
    }
    this.deps.store.deleteContext(contextId);
    this.contexts.delete(contextId);
    undo.push(() => this.contexts.set(contextId, ctx));
  }

  // ---- ioas -----------------------------------------------------------------------------------

  createIoas(caller: Caller, contextId: string): IovaSpace {
    const ctx = this.getContext(caller, contextId);
    const usage = this.usageOf(ctx.principalId);
    const quota = this.deps.quotasOf(ctx.principalId).maxIoas;
    if (usage.ioas >= quota) fail('ENOSPC', `maxIoas quota of ${quota} reached`);
    return this.mutate(
      () => {
        const id = this.ids.allocate();
        const space = new IovaSpace(id, ctx.id, ctx.principalId, new Date(this.deps.now()).toISOString(), this.sharedPages);
        this.deps.store.insertIoas({ id, contextId: ctx.id, allowed: [], createdAt: space.createdAt });
        this.spaces.set(id, space);
        usage.ioas++;
        return space;
      },
      (undo, space) =>
        undo.push(() => {
          this.spaces.delete(space.id);
          this.ids.free(space.id);
          usage.ioas--;
        }),
      { actor: caller.id, action: 'ioas.create', target: (s) => `ioas:${s.id}` },
    );
  }

  getIoas(caller: Caller, id: number): IovaSpace {
    const space = this.spaces.get(id);
    if (!space || (caller.role !== 'admin' && space.principalId !== caller.id)) fail('ENOENT', `ioas ${id} does not exist`);
    return space;
  }

  listIoas(caller: Caller, contextId?: string): IovaSpace[] {
    return [...this.spaces.values()].filter(
      (s) => (caller.role === 'admin' || s.principalId === caller.id) && (contextId === undefined || s.contextId === contextId),
    );
  }

  /** Destroying an ioas with mappings is fine; one held by a group, device or hwpt is EBUSY. */
  destroyIoas(caller: Caller, id: number): void {
    const space = this.getIoas(caller, id);
    const holders = this.holders.get(id);
    if (holders && holders.size > 0) {
      // Holder names read "<kind> <id>" (group 3, hwpt 7, device <id>): each becomes a blocker of that kind.
      const blockers = [...holders].map((h) => {
        const [kind, ...rest] = h.split(' ');
        return { kind: kind as Blocker['kind'], id: rest.join(' '), reason: `uses ioas ${id}`, owner: space.contextId };
      });
      fail('EBUSY', `ioas ${id} is in use by ${[...holders].join(', ')}`, { blockers });
    }
    this.transact((undo) => this.destroySpace(space, undo), { actor: caller.id, action: 'ioas.destroy', target: `ioas:${id}` });
  }

  /** Marks an ioas as used by something (a container group, an attached device, a hwpt). */
  hold(ioasId: number, holder: string, undo?: UndoLog): void {
    const set = this.holders.get(ioasId) ?? new Set<string>();
    set.add(holder);
    this.holders.set(ioasId, set);
    undo?.push(() => set.delete(holder));
  }

  unhold(ioasId: number, holder: string, undo?: UndoLog): void {
    const set = this.holders.get(ioasId);
    if (set?.delete(holder)) undo?.push(() => set.add(holder));
  }

  /** Registers what must be undone first when a context is released (its bindings, groups, hwpts). */
  onRelease(hook: (contextId: string, undo: UndoLog) => void): void {
    this.releaseHooks.push(hook);
  }

  /** The address space with this id, whoever owns it (for the policies, which check ownership themselves). */
  space(id: number): IovaSpace | undefined {
    return this.spaces.get(id);
  }

  /** The context with this id, whoever owns it. */
  context(id: string): Context | undefined {
    return this.contexts.get(id);
  }

  /** An id from the IOASID space (hwpts share it with ioas). */
  allocateId(undo: UndoLog): number {
    const id = this.ids.allocate();
    undo.push(() => this.ids.free(id));
    return id;
  }

  /** Marks an id as used at start-up (a hwpt restored from the store). */
  reserveId(id: number): void {
    this.ids.reclaim(id);
  }

  freeId(id: number, undo: UndoLog): void {
    this.ids.free(id);
    undo.push(() => this.ids.reclaim(id));
  }

  /** Removes every mapping of an address space (type1: the last group left the container). */
  unmapEverything(space: IovaSpace, undo: UndoLog): void {
    for (const m of [...space.mappings.from()]) this.removeMapping(space, m, undo);
  }

  private destroySpace(space: IovaSpace, undo: UndoLog): void {
    const mappings = [...space.mappings.from()];
    for (const m of mappings) this.removeMapping(space, m, undo);
    this.deps.store.deleteIoas(space.id);
    this.spaces.delete(space.id);
    this.ids.free(space.id);
    const usage = this.usageOf(space.principalId);
    usage.ioas--;
    undo.push(() => {
      usage.ioas++;
      this.ids.reclaim(space.id);
      this.spaces.set(space.id, space);
    });
  }

  // ---- mappings -------------------------------------------------------------------------------

  /** The mapping rule set of the policy in force: iommufd (device-first) or type1v2 (group-first). */
  private rules(): RuleSet {
    return ruleSetFor(this.deps.policy());
  }

  map(caller: Caller, ioasId: number, args: MapArgs): Mapping {
    const rules = this.rules();
    if (rules === 'iommufd') checkIommufdMapArgs(args);
    const space = this.getIoas(caller, ioasId);
    return this.mutate(
      (undo) => this.mapOne(space, args, rules, undo),
      undefined,
      { actor: caller.id, action: 'ioas.map', target: () => `ioas:${ioasId}` },
    );
  }

  /** Maps several areas, all or nothing: a refusal names the failing entry and nothing stays mapped. */
  mapBatch(caller: Caller, ioasId: number, batch: MapArgs[]): Mapping[] {
    const rules = this.rules();
    const space = this.getIoas(caller, ioasId);
    return this.mutate(
      (undo) =>
        batch.map((args, i) => {
          try {
            if (rules === 'iommufd') checkIommufdMapArgs(args);
            return this.mapOne(space, args, rules, undo);
          } catch (err) {
            if (err instanceof Error) err.message = `mappings[${i}]: ${err.message}`;
            throw err;
          }
        }),
      undefined,
      { actor: caller.id, action: 'ioas.map-batch', target: () => `ioas:${ioasId}` },
    );
  }

  private mapOne(space: IovaSpace, args: MapArgs, rules: RuleSet, undo: UndoLog): Mapping {
    const iova = rules === 'iommufd' ? placeIommufd(space, args) : placeType1(space, args);
    const usage = this.usageOf(space.principalId);
    const quotas = this.deps.quotasOf(space.principalId);
    this.assertRoomForMappings(space.principalId, 1);
    if (rules === 'type1v2') checkType1Aperture(space, iova, args.length);
    if (usage.pinnedBytes + args.length > quotas.maxPinnedBytes) {
      fail('ENOMEM', `mapping 0x${args.length.toString(16)} bytes would pass the maxPinnedBytes quota of 0x${quotas.maxPinnedBytes.toString(16)}`);
    }
    const pages: Pages = { id: this.nextPagesId++, principalId: space.principalId, bytes: args.length, writable: args.write, refs: 0 };
    usage.pinnedBytes += pages.bytes;
    undo.push(() => (usage.pinnedBytes -= pages.bytes));
    const m: Mapping = { iova, last: iova + args.length - 1n, length: args.length, userAddress: args.userAddress, read: args.read, write: args.write, pages };
    this.addMapping(space, m, undo);
    return m;
  }

  private addMapping(space: IovaSpace, m: Mapping, undo: UndoLog): void {
    this.deps.store.insertMapping(space.id, m);
    space.mappings.insert(m);
    m.pages.refs++;
    const usage = this.usageOf(space.principalId);
    usage.mappings++;
    undo.push(() => {
      space.mappings.remove(m.iova);
      m.pages.refs--;
      usage.mappings--;
    });
  }

  private removeMapping(space: IovaSpace, m: Mapping, undo: UndoLog): void {
    this.deps.store.deleteMapping(space.id, m.iova);
    space.mappings.remove(m.iova);
    const usage = this.usageOf(space.principalId);
    usage.mappings--;
    m.pages.refs--;
    const released = m.pages.refs === 0;
    if (released) {
      // The last mapping of pinned memory: its charge goes (a copy shares the source's charge).
      this.usageOf(m.pages.principalId).pinnedBytes -= m.pages.bytes;
    }
    undo.push(() => {
      if (released) this.usageOf(m.pages.principalId).pinnedBytes += m.pages.bytes;
      m.pages.refs++;
      usage.mappings++;
      space.mappings.insert(m);
    });
  }

  /** Removes mappings per the policy's unmap rules; answers the bytes removed. */
  unmap(caller: Caller, ioasId: number, args: UnmapArgs): bigint {
    const space = this.getIoas(caller, ioasId);
    const victims = planUnmap(space, this.rules(), args);
    return this.mutate(
      (undo) => {
        let bytes = 0n;
        for (const m of victims) {
          this.removeMapping(space, m, undo);
          bytes += m.length;
        }
        return bytes;
      },
      undefined,
      { actor: caller.id, action: 'ioas.unmap', target: () => `ioas:${ioasId}` },
    );
  }

  /**
   * IOMMU_IOAS_COPY: maps what is mapped at [srcIova, +length) of the source into this ioas, one
   * mapping per source mapping touched, sharing their pinned pages (no new charge).
   */
  copy(caller: Caller, dstIoasId: number, args: CopyArgs): Mapping[] {
    if (this.rules() === 'type1v2') fail('EOPNOTSUPP', 'copy is an iommufd operation: not available under group-first');
    if (args.length >= U64_MAX || args.srcIova >= U64_MAX || (args.dstIova !== undefined && args.dstIova >= U64_MAX)) {
      fail('EOVERFLOW', 'srcIova, dstIova and length must be below 2^64-1');
    }
    if (!args.read && !args.write) fail('EINVAL', 'a mapping must allow read, write or both');
    const src = this.getIoas(caller, args.srcIoasId);
    if (args.length === 0n) fail('EINVAL', 'length must not be 0');
    if (args.srcIova + args.length - 1n > U64_MAX) fail('EOVERFLOW', 'srcIova + length - 1 is past 2^64-1');
    const pieces = this.sourcePieces(src, args.srcIova, args.length);
    const dst = this.getIoas(caller, dstIoasId);
    if (src.principalId !== dst.principalId) fail('ENOENT', `ioas ${args.srcIoasId} does not exist`);

    const first = pieces[0]!;
    const iova = placeIommufd(
      dst,
      { iova: args.dstIova, length: args.length, userAddress: first.userAddress, read: args.read, write: args.write },
      pieces.map((p) => p.userAddress % PAGE_SIZE),
    );
    for (const p of pieces) {
      if (args.write && !p.pages.writable) fail('EPERM', `source mapping at 0x${p.srcIova.toString(16)} is read-only: cannot copy it writable`);
    }
    this.assertRoomForMappings(dst.principalId, pieces.length);
    return this.mutate(
      (undo) => {
        let at = iova;
        return pieces.map((p) => {
          const m: Mapping = { iova: at, last: at + p.length - 1n, length: p.length, userAddress: p.userAddress, read: args.read, write: args.write, pages: p.pages };
          this.addMapping(dst, m, undo);
          at += p.length;
          return m;
        });
      },
      undefined,
      { actor: caller.id, action: 'ioas.copy', target: () => `ioas:${dstIoasId}` },
    );
  }

  /** The source range must be covered by contiguous mappings (any byte offsets), else ENOENT. */
  private sourcePieces(src: IovaSpace, srcIova: bigint, length: bigint): { srcIova: bigint; length: bigint; userAddress: bigint; pages: Pages }[] {
    const last = srcIova + length - 1n;
    const pieces: { srcIova: bigint; length: bigint; userAddress: bigint; pages: Pages }[] = [];
    let cursor = srcIova;
    for (const m of src.mappings.meeting(srcIova, last)) {
      if (m.iova > cursor) break;
      const end = m.last < last ? m.last : last;
      pieces.push({ srcIova: cursor, length: end - cursor + 1n, userAddress: m.userAddress + (cursor - m.iova), pages: m.pages });
      if (end === last) return pieces;
      cursor = end + 1n;
    }
    fail('ENOENT', `source range ${fmt({ start: srcIova, last })} is not wholly mapped`);
  }

  setAllowedRanges(caller: Caller, ioasId: number, ranges: Range[]): Range[] {
    if (this.rules() === 'type1v2') fail('EOPNOTSUPP', 'allowed ranges are an iommufd feature: not available under group-first');
    const space = this.getIoas(caller, ioasId);
    const sorted = checkAllowedRanges(space, ranges);
    const before = space.allowed;
    return this.mutate(
      () => {
        this.deps.store.setAllowedRanges(ioasId, sorted);
        space.allowed = sorted;
        return sorted;
      },
      (undo) => undo.push(() => (space.allowed = before)),
      { actor: caller.id, action: 'ioas.allowed-ranges', target: () => `ioas:${ioasId}` },
    );
  }

  /** Mappings in address order after `cursor` (exclusive), at most `limit`. */
  listMappings(caller: Caller, ioasId: number, after: bigint | undefined, limit: number): { items: Mapping[]; next: bigint | null } {
    const space = this.getIoas(caller, ioasId);
    const items: Mapping[] = [];
    let more = false;
    for (const m of space.mappings.from(after === undefined ? 0n : after)) {
      if (after !== undefined && m.iova <= after) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(m);
    }
    return { items, next: more ? items[items.length - 1]!.iova : null };
  }

  /** maxMappings counts every mapping of the principal, copies included: past it is ENOSPC. */
  private assertRoomForMappings(principalId: string, count: number): void {
    const max = this.deps.quotasOf(principalId).maxMappings;
    if (this.usageOf(principalId).mappings + count > max) fail('ENOSPC', `maxMappings quota of ${max} reached`);
  }

  usageFor(principalId: string): Usage {
    return { ...this.usageOf(principalId) };
  }

  private usageOf(principalId: string): Usage {
    let u = this.usage.get(principalId);
    if (!u) {
      u = { ioas: 0, mappings: 0, pinnedBytes: 0n };
      this.usage.set(principalId, u);
    }
    return u;
  }

  // ---- transactions ---------------------------------------------------------------------------

  /**
   * Runs a change as one transaction with its audit row. Memory changes register their inverse in
   * the undo log (by the change itself, or by `afterwards` for its result), so a refusal part-way or
   * a failed commit leaves memory exactly as the database.
   */
  transact<T>(change: (undo: UndoLog) => T, audit?: { actor: string | null; action: string; target: string }): T {
    return this.mutate(change, undefined, audit && { ...audit, target: () => audit.target });
  }

  private mutate<T>(
    change: (undo: UndoLog) => T,
    afterwards?: (undo: UndoLog, result: T) => void,
    audit?: { actor: string | null; action: string; target: (result: T) => string },
  ): T {
    const undo = new UndoLog();
    try {
      return this.deps.store.transaction(() => {
        const result = change(undo);
        afterwards?.(undo, result);
        if (audit) this.deps.store.audit({ actor: audit.actor, action: audit.action, target: audit.target(result) });
        return result;
      });
    } catch (err) {
      undo.rollback();
      throw err;
    }
  }
}
