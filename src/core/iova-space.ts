import { fail } from './errors.js';
import { IovaTree } from './iova-tree.js';
import { mappingRows, type SharedPages } from './mapping-rows.js';
import type { CoreObject, Domain, Mapping, Range } from './model.js';
import { anyMeets, complement, mergeRanges } from './ranges.js';
import { U64_MAX } from './u64.js';

/**
 * One I/O address space (an IOAS; under group-first, a VFIO container): its mappings, its allowed
 * ranges and the domains attached to it, from which its alignment and reserved set derive (SPEC 5).
 * It is an object of the object table (type `ioas`): hwpts on it, container groups and virtual
 * devices' accesses are its users. Kernel: drivers/iommu/iommufd/io_pagetable.c.
 */
export class IovaSpace implements CoreObject {
  readonly type = 'ioas' as const;
  readonly users = new Set<CoreObject>();
  readonly mappings: IovaTree<Mapping>;
  /** How the audit log names it (`ioas:<id>`), made once: a map or unmap writes it each time. */
  readonly auditTarget: string;
  allowed: Range[] = [];
  private domainList: Domain[] = [];
  private reservedCache: Range[] | null = [];

  constructor(
    readonly id: number,
    readonly contextId: string,
    readonly principalId: string,
    readonly createdAt: string,
    /** The allocator's pages shared between mappings (copies), common to all its address spaces. */
    readonly sharedPages: SharedPages,
  ) {
    this.mappings = new IovaTree(mappingRows(principalId, sharedPages));
    this.auditTarget = `ioas:${id}`;
  }

  get domains(): readonly Domain[] {
    return this.domainList;
  }

  /** The largest "smallest page size" of the domains; 1 with no domain. */
  get alignment(): bigint {
    let a = 1n;
    for (const d of this.domainList) if (d.minPageSize > a) a = d.minPageSize;
    return a;
  }

  /** Complement of every domain's aperture plus every domain's reserved regions, sorted and merged. */
  get reserved(): Range[] {
    if (this.reservedCache === null) {
      const parts: Range[] = [];
      for (const d of this.domainList) {
        if (d.aperture.start > 0n) parts.push({ start: 0n, last: d.aperture.start - 1n });
        if (d.aperture.last < U64_MAX) parts.push({ start: d.aperture.last + 1n, last: U64_MAX });
        parts.push(...d.reserved);
      }
      this.reservedCache = mergeRanges(parts);
    }
    return this.reservedCache;
  }

  /** What GET iova-ranges answers: the usable ranges; allowed ranges do not narrow it. */
  usableRanges(): Range[] {
    return complement(this.reserved);
  }

  meetsReserved(r: Range): boolean {
    return anyMeets(this.reserved, r);
  }

  /**
   * Adds a domain (a device attached, a hwpt allocated, a group joining the container). Refused
   * EADDRINUSE, leaving everything as it was, when a mapping or an allowed range would fall into the
   * new reserved set or break the new alignment. Kernel: iopt_table_add_domain, iopt_reserve_iova.
   */
  addDomain(domain: Domain): void {
    this.setDomain(domain);
  }

  /**
   * Adds the domain, or replaces the one with the same key (a device joining a hwpt brings its
   * reserved regions), with the checks of {@link addDomain}. Returns the domain it replaced.
   */
  setDomain(domain: Domain): Domain | undefined {
    const previous = this.domainList.find((d) => d.key === domain.key);
    const candidate = new IovaSpace(this.id, this.contextId, this.principalId, this.createdAt, this.sharedPages);
    candidate.domainList = [...this.domainList.filter((d) => d.key !== domain.key), domain];
    candidate.reservedCache = null;
    const reserved = candidate.reserved;
    const align = candidate.alignment;
    for (const r of this.allowed) {
      if (anyMeets(reserved, r)) fail('EADDRINUSE', `allowed range ${fmt(r)} lies in the new domain's reserved set`);
    }
    for (const m of this.mappings.from()) {
      if (anyMeets(reserved, { start: m.iova, last: m.last })) {
        fail('EADDRINUSE', `mapping at 0x${m.iova.toString(16)} lies outside the new domain's aperture or in a reserved region`);
      }
      if (m.iova % align !== 0n || m.length % align !== 0n || (m.userAddress % 4096n) % align !== 0n) {
        fail('EADDRINUSE', `mapping at 0x${m.iova.toString(16)} breaks the new alignment 0x${align.toString(16)}`);
      }
    }
    this.domainList = candidate.domainList;
    this.reservedCache = null;
    return previous;
  }

  /** Removes the domain with this key; returns it. */
  removeDomain(key: string): Domain | undefined {
    const previous = this.domainList.find((d) => d.key === key);
    this.domainList = this.domainList.filter((d) => d.key !== key);
    this.reservedCache = null;
    return previous;
  }

  /** Puts a domain back without checks: an undo, or a restart restoring what was valid. */
  restoreDomain(domain: Domain): void {
    this.domainList = [...this.domainList.filter((d) => d.key !== domain.key), domain];
    this.reservedCache = null;
  }
}

function fmt(r: Range): string {
  return `0x${r.start.toString(16)}-0x${r.last.toString(16)}`;
}
