import type { Caller } from './caller.js';
import type { CoreEvent } from './events.js';
import { fail } from './errors.js';
import type { IovaSpace } from './iova-space.js';
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
import type { Mapping, Pages, PolicyName, Range, RuleSet } from './model.js';
import { ruleSetFor } from './model.js';
import type { ObjectTable } from './objects.js';
import type { IoasPort, MappingPort } from './ports.js';
import type { QuotaBook } from './quotas.js';
import type { Tx, UndoLog } from './tx.js';
import { U64_MAX } from './u64.js';

export interface CopyArgs {
  srcIoasId: number;
  srcIova: bigint;
  length: bigint;
  dstIova?: bigint | undefined;
  read: boolean;
  write: boolean;
}

export interface MappingDeps {
  port: MappingPort & Pick<IoasPort, 'setAllowedRanges'>;
  tx: Tx;
  objects: ObjectTable;
  quotas: QuotaBook;
  /** The policy in force decides the rule set: iommufd (device-first) or type1v2 (group-first). */
  policy: () => PolicyName;
}

/**
 * DMA mappings of an address space: map, batch map, unmap, copy and allowed ranges under the policy's
 * rule set (map-rules.ts holds the checks, in the kernel's order). Each mapping is written through to
 * the store in the same step as the in-memory index, inside one transaction.
 */
export class Mappings {
  private nextPagesId = 1;

  constructor(private readonly deps: MappingDeps) {}

  /**
   * Start-up: the mapping rows, sorted by (ioas, iova), build each space's index bottom-up in O(n);
   * pinned pages shared by copies are charged once.
   */
  restore(): void {
    const { port, objects, quotas } = this.deps;
    // Pages seen so far, by id (small dense integers): the principal charged for them, in a plain
    // array (no object per mapping: a restart reads a million rows). Pages seen twice (copies), or
    // that differ from their mapping, become one shared object.
    const chargedTo: string[] = [];
    const sharedById = new Map<number, Pages>();
    // Rows stream into each space's index (no array of a million objects held while it builds).
    let batch: ReturnType<IovaSpace['mappings']['bulkLoad']> | undefined;
    let batchCount = 0;
    let batchIoas = -1;
    let principalId = '';
    const flush = (): void => {
      const space = objects.find('ioas', batchIoas);
      if (space && batch) {
        batch.finish();
        quotas.count(space.principalId, 'mappings', batchCount);
      }
      batch = undefined;
      batchCount = 0;
    };
    // The index copies what it needs from the item and keeps no reference to it, nor to pages that
    // are private to their mapping (mapping-rows.ts): one scratch item and one scratch pages serve
    // every private row.
    const scratchPages: Pages = { id: 0, principalId: '', bytes: 0n, writable: false, refs: 1 };
    const item = { iova: 0n, last: 0n, length: 0n, userAddress: 0n, read: false, write: false, pages: scratchPages };
    port.eachMapping((ioasId, iova, length, userAddress, read, write, pagesId, pagesBytes, pagesWritable) => {
      if (ioasId !== batchIoas) {
        flush();
        batchIoas = ioasId;
        const space = objects.find('ioas', ioasId);
        batch = space?.mappings.bulkLoad();
        principalId = space?.principalId ?? '';
      }
      let p = sharedById.size > 0 ? sharedById.get(pagesId) : undefined;
      if (p) p.refs++;
      else {
        const first = chargedTo[pagesId];
        if (first === undefined) {
          chargedTo[pagesId] = principalId;
          quotas.pin(principalId, pagesBytes);
          if (pagesId >= this.nextPagesId) this.nextPagesId = pagesId + 1;
          if (pagesBytes === length) {
            p = scratchPages;
            p.id = pagesId;
            p.principalId = principalId;
            p.bytes = pagesBytes;
            p.writable = pagesWritable;
          } else sharedById.set(pagesId, (p = { id: pagesId, principalId, bytes: pagesBytes, writable: pagesWritable, refs: 1 }));
        } else sharedById.set(pagesId, (p = { id: pagesId, principalId: first, bytes: pagesBytes, writable: pagesWritable, refs: 2 }));
      }
      item.iova = iova;
      item.last = iova + length - 1n;
      item.length = length;
      item.userAddress = userAddress;
      item.read = read;
      item.write = write;
      item.pages = p;
      batch?.add(item);
      batchCount++;
    });
    flush();
  }

  /** The mapping rule set of the policy in force. */
  private rules(): RuleSet {
    return ruleSetFor(this.deps.policy());
  }

  private space(caller: Caller, id: number): IovaSpace {
    return this.deps.objects.get(caller, 'ioas', id);
  }

  map(caller: Caller, ioasId: number, args: MapArgs): Mapping {
    const rules = this.rules();
    if (rules === 'iommufd') checkIommufdMapArgs(args);
    const space = this.space(caller, ioasId);
    return this.deps.tx.run(
      (undo) => {
        const m = this.mapOne(space, args, rules, undo);
        this.deps.port.insertMappings(space.id, [m]);
        return m;
      },
      { actor: caller.id, action: 'ioas.map', target: space.auditTarget },
    );
  }

  /**
   * Maps several areas, all or nothing: a refusal names the failing entry and nothing stays mapped.
   * Each entry is checked against the index as the ones before it left it; the rows are written
   * together at the end, in one pass (multi-row statements), in the same transaction.
   */
  mapBatch(caller: Caller, ioasId: number, batch: MapArgs[]): Mapping[] {
    const rules = this.rules();
    const space = this.space(caller, ioasId);
    return this.deps.tx.run(
      (undo) => {
        const made = batch.map((args, i) => {
          try {
            if (rules === 'iommufd') checkIommufdMapArgs(args);
            return this.mapOne(space, args, rules, undo);
          } catch (err) {
            if (err instanceof Error) err.message = `mappings[${i}]: ${err.message}`;
            throw err;
          }
        });
        this.deps.port.insertMappings(space.id, made);
        return made;
      },
      { actor: caller.id, action: 'ioas.map-batch', target: space.auditTarget },
    );
  }

  private mapOne(space: IovaSpace, args: MapArgs, rules: RuleSet, undo: UndoLog): Mapping {
    const { quotas } = this.deps;
    const iova = rules === 'iommufd' ? placeIommufd(space, args) : placeType1(space, args);
    if (rules === 'iommufd') quotas.assertMapRoom(space.principalId, args.length);
    else {
      quotas.assertMappingRoom(space.principalId, 1);
      checkType1Aperture(space, iova, args.length);
      quotas.assertPinRoom(space.principalId, args.length);
    }
    const pages: Pages = { id: this.nextPagesId++, principalId: space.principalId, bytes: args.length, writable: args.write, refs: 0 };
    const m: Mapping = { iova, last: iova + args.length - 1n, length: args.length, userAddress: args.userAddress, read: args.read, write: args.write, pages };
    this.add(space, m, undo, true);
    return m;
  }

  /**
   * Puts a mapping in memory (the caller writes its row); `pin`: its pages are new and charged now
   * (a map), else shared and charged already (a copy).
   */
  private add(space: IovaSpace, m: Mapping, undo: UndoLog, pin: boolean): void {
    const { quotas, tx } = this.deps;
    const change = new MappingChange(space, m, false, quotas, pin);
    tx.emit(change);
    space.mappings.insert(m);
    m.pages.refs++;
    quotas.count(space.principalId, 'mappings', 1);
    if (pin) quotas.pin(space.principalId, m.pages.bytes);
    undo.push(change);
  }

  private remove(space: IovaSpace, m: Mapping, undo: UndoLog): void {
    const { port, quotas, tx } = this.deps;
    port.deleteMapping(space.id, m.iova);
    space.mappings.remove(m.iova);
    quotas.count(space.principalId, 'mappings', -1);
    m.pages.refs--;
    // The last mapping of pinned memory: its charge goes (a copy shares the source's charge).
    const released = m.pages.refs === 0;
    if (released) quotas.unpin(m.pages.principalId, m.pages.bytes);
    const change = new MappingChange(space, m, true, quotas, released);
    tx.emit(change);
    undo.push(change);
  }

  /** Removes every mapping of an address space (its destroy; type1: the last group left the container). */
  removeAll(space: IovaSpace, undo: UndoLog): void {
    for (const m of [...space.mappings.from()]) this.remove(space, m, undo);
  }

  /** Removes mappings per the policy's unmap rules; answers the bytes removed. */
  unmap(caller: Caller, ioasId: number, args: UnmapArgs): bigint {
    const space = this.space(caller, ioasId);
    const victims = planUnmap(space, this.rules(), args);
    return this.deps.tx.run(
      (undo) => {
        for (const m of victims) this.remove(space, m, undo);
        // Most unmaps remove one mapping: its length is the answer as it is.
        if (victims.length === 1) return victims[0]!.length;
        let bytes = 0n;
        for (const m of victims) bytes += m.length;
        return bytes;
      },
      { actor: caller.id, action: 'ioas.unmap', target: space.auditTarget },
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
    const src = this.space(caller, args.srcIoasId);
    if (args.length === 0n) fail('EINVAL', 'length must not be 0');
    if (args.srcIova + args.length - 1n > U64_MAX) fail('EOVERFLOW', 'srcIova + length - 1 is past 2^64-1');
    const pieces = sourcePieces(src, args.srcIova, args.length);
    const dst = this.space(caller, dstIoasId);
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
    this.deps.quotas.assertMappingRoom(dst.principalId, pieces.length);
    return this.deps.tx.run(
      (undo) => {
        let at = iova;
        const made = pieces.map((p) => {
          const m: Mapping = { iova: at, last: at + p.length - 1n, length: p.length, userAddress: p.userAddress, read: args.read, write: args.write, pages: p.pages };
          this.add(dst, m, undo, false);
          at += p.length;
          return m;
        });
        this.deps.port.insertMappings(dst.id, made);
        return made;
      },
      { actor: caller.id, action: 'ioas.copy', target: `ioas:${dstIoasId}` },
    );
  }

  setAllowedRanges(caller: Caller, ioasId: number, ranges: Range[]): Range[] {
    if (this.rules() === 'type1v2') fail('EOPNOTSUPP', 'allowed ranges are an iommufd feature: not available under group-first');
    const space = this.space(caller, ioasId);
    const sorted = checkAllowedRanges(space, ranges);
    const before = space.allowed;
    return this.deps.tx.run(
      (undo) => {
        this.deps.port.setAllowedRanges(ioasId, sorted);
        space.allowed = sorted;
        this.deps.tx.emit({ type: 'ioas.updated', object: { kind: 'ioas', id: ioasId }, scope: 'owner', principalId: space.principalId, contextId: space.contextId, subject: space });
        undo.push(() => (space.allowed = before));
        return sorted;
      },
      { actor: caller.id, action: 'ioas.allowed-ranges', target: `ioas:${ioasId}` },
    );
  }

  /** Mappings in address order after `cursor` (exclusive), at most `limit`. */
  list(caller: Caller, ioasId: number, after: bigint | undefined, limit: number): { items: Mapping[]; next: bigint | null } {
    const space = this.space(caller, ioasId);
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
}

/**
 * A mapping made or removed, as one record that is both the change's event (one per mapping: a
 * batch, an unmap of many, a destroy: one each, in order) and its undo step. A map or unmap only
 * records the space, the mapping, which way and whether pinned pages were charged or released by it;
 * the event's id (a bigint in hex) and detail are made when the event log or a dry run reads them.
 */
class MappingChange implements CoreEvent {
  readonly scope = 'owner';
  private obj: CoreEvent['object'] | undefined;

  constructor(
    private readonly space: IovaSpace,
    readonly subject: Mapping,
    readonly gone: boolean,
    private readonly quotas: QuotaBook,
    /** Made: its pages were charged by it (a map, not a copy). Removed: their charge went with it. */
    private readonly charged: boolean,
  ) {}

  /** Puts memory back as it was before this change (UndoLog). */
  undo(): void {
    const { space, subject: m, quotas } = this;
    if (this.gone) {
      if (this.charged) quotas.pin(m.pages.principalId, m.pages.bytes);
      m.pages.refs++;
      quotas.count(space.principalId, 'mappings', 1);
      space.mappings.insert(m);
    } else {
      space.mappings.remove(m.iova);
      m.pages.refs--;
      quotas.count(space.principalId, 'mappings', -1);
      if (this.charged) quotas.unpin(space.principalId, m.pages.bytes);
    }
  }

  get type(): string {
    return this.gone ? 'mapping.removed' : 'mapping.created';
  }

  get object(): CoreEvent['object'] {
    return (this.obj ??= { kind: 'mapping', id: `${this.space.id}:0x${this.subject.iova.toString(16)}` });
  }

  get principalId(): string {
    return this.space.principalId;
  }

  get contextId(): string {
    return this.space.contextId;
  }

  get detail(): Record<string, unknown> {
    return { ioasId: this.space.id, length: this.subject.length };
  }
}

/** The source range must be covered by contiguous mappings (any byte offsets), else ENOENT. */
function sourcePieces(src: IovaSpace, srcIova: bigint, length: bigint): { srcIova: bigint; length: bigint; userAddress: bigint; pages: Pages }[] {
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
