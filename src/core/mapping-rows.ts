import { ROW_HEAD, type RowCodec } from './iova-tree.js';
import type { Mapping, Pages } from './model.js';
import { deltaOf, joinU64, unzigzag, zigzag } from './u64-float.js';

/**
 * How a mapping lives in its address space's IOVA index: two float64 columns beside the index's own
 * (userAddress, pages id) and five bits, no object per mapping.
 *
 * Pinned pages (model.ts Pages) are created by a map and usually belong to that one mapping: then
 * nothing but their id is kept, and they are materialized on read as {bytes: length, refs: 1, the
 * space's principal}. Pages shared by copies (or whose bytes differ from the mapping's length) are
 * kept as one object in {@link SharedPages}, reachable from every address space of the allocator, so
 * every mapping holding them hands out the same object and its reference count stays exact.
 */

const COL_USER = ROW_HEAD;
const COL_PAGES = ROW_HEAD + 1;

const READ = 1;
const WRITE = 2;
const PAGES_WRITABLE = 4;
/** bits >> 3: zigzag(userAddress delta), 12 bits. */
const UA_SHIFT = 3;

/**
 * The allocator's pages that are not private to one mapping, by id. An entry appears when pages are
 * inserted with a reference already taken (a copy, or a mapping put back by an undo) and goes when
 * the mapping holding the last reference is removed.
 *
 * Contract with the allocator: a mapping's reference on its pages is counted after the tree's insert
 * and dropped after the tree's remove (pages.refs is 0 at the insert of a new map, >= 1 at a copy's,
 * and 1 at the remove of the last holder).
 */
export class SharedPages {
  private readonly byId = new Map<number, Pages>();
  /** Bumped by every change: a tree reuses a materialized mapping only while this holds. */
  version = 0;

  get size(): number {
    return this.byId.size;
  }

  get(id: number): Pages | undefined {
    return this.byId.get(id);
  }

  /** Makes `pages` the object every mapping with its id hands out (a first registration wins). */
  adopt(pages: Pages): void {
    if (this.byId.has(pages.id)) return;
    this.byId.set(pages.id, pages);
    this.version++;
  }

  /** A mapping holding `pages` left its tree; the caller drops its reference afterwards. */
  release(pages: Pages): void {
    if (pages.refs <= 1 && this.byId.size > 0 && this.byId.get(pages.id) === pages) {
      this.byId.delete(pages.id);
      this.version++;
    }
  }
}

/** The row codec of one address space's mappings. */
export function mappingRows(principalId: string, shared: SharedPages): RowCodec<Mapping> {
  // Mappings of one space tend to share a length: the last one is reused (a bigint is immutable).
  let lastLengthNum = -1;
  let lastLength = 0n;
  return {
    width: 2,
    write(m, row, at, bulk) {
      const p = m.pages;
      const ua = m.userAddress;
      const uaA = Number(ua);
      row[at + COL_USER] = uaA;
      row[at + COL_PAGES] = p.id;
      // The allocator counts a reference after an insert; a bulk load has counted the rows loaded so far.
      if (p.refs >= (bulk ? 2 : 1) || p.bytes !== m.length || p.principalId !== principalId) shared.adopt(p);
      return (m.read ? READ : 0) | (m.write ? WRITE : 0) | (p.writable ? PAGES_WRITABLE : 0) | (zigzag(deltaOf(ua, uaA)) << UA_SHIFT);
    },
    read(iova, last, bits, row, at, lengthNum) {
      let length: bigint;
      if (lengthNum < 0) length = last - iova + 1n;
      else if (lengthNum === lastLengthNum) length = lastLength;
      else length = lastLength = BigInt((lastLengthNum = lengthNum));
      const uaA = row[at + COL_USER]!;
      const userAddress = bits >= 1 << UA_SHIFT ? joinU64(uaA, unzigzag(bits >> UA_SHIFT)) : uaA === 0 ? 0n : BigInt(uaA);
      const id = row[at + COL_PAGES]!;
      const pages = (shared.size > 0 ? shared.get(id) : undefined) ?? {
        id,
        principalId,
        bytes: length,
        writable: (bits & PAGES_WRITABLE) !== 0,
        refs: 1,
      };
      return { iova, last, length, userAddress, read: (bits & READ) !== 0, write: (bits & WRITE) !== 0, pages };
    },
    version: () => shared.version,
    removed(m) {
      shared.release(m.pages);
    },
  };
}
