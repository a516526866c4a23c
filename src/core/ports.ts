import type { CoreEvent } from './events.js';
import type { ContextRecord, Device, GroupRecord, HostWarning, HwptRecord, Iommu, Mapping, PolicyName, Principal, Range } from './model.js';

/**
 * What the core needs from persistence, as plain synchronous calls on plain data, one narrow port per
 * concern: each service takes only the ports it uses. src/store implements them with SQLite (one
 * module per port); the core never sees a database type. Every change runs inside
 * {@link TxPort.transaction} (through core/tx.ts), so a refusal thrown half-way leaves nothing written.
 */

/** Atomicity: everything `fn` writes commits together, or nothing does when it throws. */
export interface TxPort {
  /** Inside {@link begin}'s transaction, a savepoint: a throw rolls back only what `fn` wrote. */
  transaction<T>(fn: () => T): T;
  /** Opens the transaction a group of changes shares (group commit, see core/tx.ts). */
  begin(): void;
  /** Commits it; when the commit fails, the store has rolled everything back before it throws. */
  commit(): void;
}

/** A committed change's events, in the same transaction (src/core/events.ts). */
export interface EventPort {
  /**
   * Appends a change's events in order, each with its state as `stateOf` renders it (null when the
   * object is gone), in one pass; answers the seq of the last one (0 when there are none). The seqs
   * of one call are consecutive.
   */
  appendEvents(events: readonly CoreEvent[], stateOf: (event: CoreEvent) => unknown): number;
}

/** One stored event as GET /v1/events delivers it. */
export interface StoredEvent {
  seq: number;
  at: string;
  type: string;
  objectKind: string;
  objectId: string;
  scope: CoreEvent['scope'];
  principalId: string | null;
  contextId: string | null;
  /** The object's state as JSON text, or null when it is gone. */
  state: string | null;
}

/** Reading the event log and keeping it within its retention (the HTTP layer's side of it). */
export interface EventLogPort {
  /** Events after `seq`, oldest first, at most `limit`. */
  eventsAfter(seq: number, limit: number): StoredEvent[];
  /** The oldest and newest seq kept (0 and the last seq ever written when the log is empty). */
  eventBounds(): { oldest: number; newest: number };
  /** Keeps the newest `keep` events; answers how many were removed. */
  pruneEvents(keep: number): number;
}

/** A stored first answer to an Idempotency-Key. */
export interface IdempotencyRecord {
  principalId: string;
  key: string;
  digest: string;
  status: number;
  body: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
}

export interface IdempotencyPort {
  getIdempotency(principalId: string, key: string): IdempotencyRecord | undefined;
  putIdempotency(record: IdempotencyRecord): void;
  /** Removes records created before `before` (epoch ms); answers how many. */
  expireIdempotency(before: number): number;
}

/** Reads of the inventory the ownership rules need (answered from memory: core/inventory-state.ts). */
export interface InventoryReadPort {
  getIommu(): Iommu;
  getGroup(id: number): GroupRecord | undefined;
  getDevice(id: string): Device | undefined;
  devicesInGroup(groupId: number): readonly Device[];
  childrenOf(deviceId: string): readonly Device[];
}

/** The inventory's tables: read at start-up into memory (inventory-state.ts), then written through. */
export interface InventoryPort extends InventoryReadPort {
  /** False until a topology was first loaded into this database. */
  hasTopology(): boolean;
  setIommu(iommu: Iommu): void;
  listGroups(): GroupRecord[];
  insertGroup(group: GroupRecord): void;
  /** Replaces a group's kind, domain type and warnings (a rescan). */
  updateGroup(group: GroupRecord): void;
  deleteGroup(id: number): void;
  /** Findings about the host as a whole, from the last load of a real host. */
  getHostWarnings(): HostWarning[];
  setHostWarnings(warnings: readonly HostWarning[]): void;
  listDevices(): Device[];
  insertDevice(device: Device): void;
  /** Replaces every field of an existing device (a rescan). */
  updateDevice(device: Device): void;
  deleteDevice(id: string): void;
  setDriver(id: string, driver: string): void;
  /** Drops every group and device (an import in replace mode). */
  clearInventory(): void;
}

export interface StoredPrincipal extends Principal {
  tokenHash: string;
}

export interface PrincipalPort {
  listPrincipals(): Principal[];
  /** Every principal's token hash (start-up: memory takes them with the principals). */
  listTokenHashes(): { id: string; tokenHash: string }[];
  getPrincipal(id: string): Principal | undefined;
  findPrincipalByTokenHash(hash: string): Principal | undefined;
  principalNameTaken(name: string, exceptId?: string): boolean;
  insertPrincipal(p: StoredPrincipal): void;
  updatePrincipal(p: Principal): void;
  setTokenHash(id: string, hash: string): void;
  deletePrincipal(id: string): void;
  countAdmins(): number;
}

export interface SystemPort {
  getPolicy(): PolicyName | undefined;
  setPolicy(policy: PolicyName): void;
}

export interface AuditEntry {
  actor: string | null;
  action: string;
  target: string;
  detail?: unknown;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  at: string;
}

export interface AuditPort {
  audit(entry: AuditEntry): void;
  listAudit(query: { afterSeq?: number; limit: number }): AuditRecord[];
}

/** An IOAS row as stored (its mappings and domains live elsewhere). */
export interface StoredIoas {
  id: number;
  contextId: string;
  allowed: Range[];
  createdAt: string;
}

/**
 * Receives one mapping row with the pinned pages it uses (shared by copies). Positional arguments
 * rather than an object: a restart reads a million of them and each object would be garbage.
 */
export type MappingRowSink = (
  ioasId: number,
  iova: bigint,
  length: bigint,
  userAddress: bigint,
  read: boolean,
  write: boolean,
  pagesId: number,
  pagesBytes: bigint,
  pagesWritable: boolean,
) => void;

/** Write-through persistence of contexts. */
export interface ContextPort {
  insertContext(c: ContextRecord): void;
  setContextLease(id: string, leaseSeconds: number | null, expiresAt: number | null): void;
  deleteContext(id: string): void;
  listContexts(): ContextRecord[];
}

/**
 * Write-through persistence of address spaces and their mappings: the core changes its in-memory
 * index and calls these in the same synchronous step, inside one transaction.
 */
export interface IoasPort {
  insertIoas(ioas: StoredIoas): void;
  setAllowedRanges(ioasId: number, ranges: Range[]): void;
  /** Deletes the ioas row and any mapping rows left on it. */
  deleteIoas(id: number): void;
  listIoas(): StoredIoas[];
}

export interface MappingPort {
  /** Writes mappings of one ioas, in one pass (a batch map is one multi-row statement run per chunk). */
  insertMappings(ioasId: number, ms: readonly Mapping[]): void;
  deleteMapping(ioasId: number, iova: bigint): void;
  /**
   * Calls `sink` for every mapping, sorted by (ioas, iova): the start-up rebuild. A store may read
   * them from a packed copy of its rows that it keeps exactly equal to them.
   */
  eachMapping(sink: MappingRowSink): void;
  /** Where that packed copy, if the store keeps one, differs from the rows (the invariant check). */
  mappingCopyProblems(): string[];
}

export type StoredHwpt = HwptRecord;

export interface HwptPort {
  insertHwpt(h: StoredHwpt): void;
  deleteHwpt(id: number): void;
  listHwpts(): StoredHwpt[];
}

/** group-first holds: open groups (maybe in a container) and their opened devices. */
export interface GroupHoldPort {
  putGroupHold(groupId: number, contextId: string, ioasId: number | null): void;
  deleteGroupHold(groupId: number): void;
  putDeviceOpen(deviceId: string, groupId: number, count: number): void;
  deleteDeviceOpen(deviceId: string): void;
  listGroupHolds(): { groupId: number; contextId: string; ioasId: number | null }[];
  listDeviceOpens(): { deviceId: string; groupId: number; count: number }[];
}

/** device-first holds: bindings with their attachment, and PASID attachments. */
export interface BindingPort {
  putBinding(deviceId: string, contextId: string, hwptId: number | null, accessIoasId: number | null): void;
  deleteBinding(deviceId: string): void;
  putPasid(deviceId: string, pasid: number, hwptId: number): void;
  deletePasid(deviceId: string, pasid: number): void;
  listBindings(): { deviceId: string; contextId: string; hwptId: number | null; accessIoasId: number | null }[];
  listPasids(): { deviceId: string; pasid: number; hwptId: number }[];
}

/** Every port: what a whole store provides (src/store/sqlite-store.ts, or a fake in tests). */
export interface Store
  extends TxPort,
    EventPort,
    EventLogPort,
    IdempotencyPort,
    InventoryPort,
    PrincipalPort,
    SystemPort,
    AuditPort,
    ContextPort,
    IoasPort,
    MappingPort,
    HwptPort,
    GroupHoldPort,
    BindingPort {}

/** Sources of randomness, injected so the core stays deterministic under test. */
export interface Secrets {
  newId(prefix: string): string;
  /** A fresh bearer token and the hash under which it is stored. */
  newToken(): { token: string; hash: string };
  hashToken(token: string): string;
}

