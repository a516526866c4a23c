import { fail } from './errors.js';
import type { Quotas } from './model.js';
import type { UndoLog } from './tx.js';

/** What a principal uses of its quotas, kept as things are created and destroyed. */
export interface Usage {
  ioas: number;
  mappings: number;
  pinnedBytes: bigint;
}

type Counter = 'ioas' | 'mappings';

/**
 * Quotas per principal (SPEC 4): every check and every usage counter in one place. Counters change
 * with the objects they count, inside the same transaction, and are undone with them.
 */
export class QuotaBook {
  private readonly usage = new Map<string, Usage>();
  private lastId: string | undefined;
  private lastUsage: Usage | undefined;

  constructor(private readonly quotasOf: (principalId: string) => Quotas) {}

  of(principalId: string): Quotas {
    return this.quotasOf(principalId);
  }

  /** A copy of what the principal uses now. */
  usageFor(principalId: string): Usage {
    return { ...this.usageOf(principalId) };
  }

  /** maxContexts: `held` contexts already; one more past the quota is ENOSPC. */
  assertContextRoom(principalId: string, held: number): void {
    const max = this.quotasOf(principalId).maxContexts;
    if (held + 1 > max) fail('ENOSPC', `maxContexts quota of ${max} reached`);
  }

  /** maxIoas: one more address space past it is ENOSPC. */
  assertIoasRoom(principalId: string): void {
    const max = this.quotasOf(principalId).maxIoas;
    if (this.usageOf(principalId).ioas >= max) fail('ENOSPC', `maxIoas quota of ${max} reached`);
  }

  /** maxMappings counts every mapping of the principal, copies included: past it is ENOSPC. */
  assertMappingRoom(principalId: string, count: number): void {
    this.checkMappings(this.quotasOf(principalId), this.usageOf(principalId), count);
  }

  /** maxPinnedBytes, like RLIMIT_MEMLOCK: mapped bytes charged at map time; past it is ENOMEM. */
  assertPinRoom(principalId: string, bytes: bigint): void {
    this.checkPin(this.quotasOf(principalId), this.usageOf(principalId), bytes);
  }

  /**
   * One new mapping of `bytes` fresh pinned pages: {@link assertMappingRoom} then
   * {@link assertPinRoom}, with one look-up of the quotas (a map's hot path).
   */
  assertMapRoom(principalId: string, bytes: bigint): void {
    const q = this.quotasOf(principalId);
    const u = this.usageOf(principalId);
    this.checkMappings(q, u, 1);
    this.checkPin(q, u, bytes);
  }

  private checkMappings(q: Quotas, u: Usage, count: number): void {
    if (u.mappings + count > q.maxMappings) fail('ENOSPC', `maxMappings quota of ${q.maxMappings} reached`);
  }

  private checkPin(q: Quotas, u: Usage, bytes: bigint): void {
    if (u.pinnedBytes + bytes > q.maxPinnedBytes) {
      fail('ENOMEM', `mapping 0x${bytes.toString(16)} bytes would pass the maxPinnedBytes quota of 0x${q.maxPinnedBytes.toString(16)}`);
    }
  }

  /** maxPasids: `used` PASID attachments already held; one more past the quota is ENOSPC. */
  assertPasidRoom(principalId: string, used: number): void {
    const max = this.quotasOf(principalId).maxPasids;
    if (used + 1 > max) fail('ENOSPC', `maxPasids quota of ${max} reached`);
  }

  count(principalId: string, what: Counter, delta: number, undo?: UndoLog): void {
    const u = this.usageOf(principalId);
    u[what] += delta;
    undo?.push(() => (u[what] -= delta));
  }

  pin(principalId: string, bytes: bigint, undo?: UndoLog): void {
    const u = this.usageOf(principalId);
    u.pinnedBytes += bytes;
    undo?.push(() => (u.pinnedBytes -= bytes));
  }

  /** The charge of pinned pages that went (their last mapping was removed). */
  unpin(principalId: string, bytes: bigint): void {
    this.usageOf(principalId).pinnedBytes -= bytes;
  }

  private usageOf(principalId: string): Usage {
    // A map or unmap asks for the same principal's usage several times in a row.
    if (principalId === this.lastId) return this.lastUsage!;
    let u = this.usage.get(principalId);
    if (!u) {
      u = { ioas: 0, mappings: 0, pinnedBytes: 0n };
      this.usage.set(principalId, u);
    }
    this.lastId = principalId;
    this.lastUsage = u;
    return u;
  }
}
