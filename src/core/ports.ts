import type { Context, Device, GroupRecord, HostWarning, HwptRecord, Iommu, Mapping, PolicyName, Principal, Range } from './model.js';

/**
 * What the core needs from persistence, as plain synchronous calls on plain data. src/store implements
 * it with SQLite; the core never sees a database type. Every service method that changes anything
 * runs inside {@link Store.transaction}, so a refusal thrown half-way leaves nothing written.
 */
export interface InventoryPort {
  /** False until a topology was first loaded into this database. */
  hasTopology(): boolean;
  getIommu(): Iommu;
  setIommu(iommu: Iommu): void;
  listGroups(): GroupRecord[];
  getGroup(id: number): GroupRecord | undefined;
  insertGroup(group: GroupRecord): void;
  /** Replaces a group's kind, domain type and warnings (a rescan). */
  updateGroup(group: GroupRecord): void;
  deleteGroup(id: number): void;
  /** Findings about the host as a whole, from the last load of a real host. */
  getHostWarnings(): HostWarning[];
  setHostWarnings(warnings: readonly HostWarning[]): void;
  listDevices(): Device[];
  getDevice(id: string): Device | undefined;
  devicesInGroup(groupId: number): Device[];
  childrenOf(deviceId: string): Device[];
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

/**
 * Write-through persistence of the allocator: the core changes its in-memory index and calls these
 * in the same synchronous step, inside one transaction.
 */
export interface AllocatorPort {
  insertContext(c: Context): void;
  setContextLease(id: string, leaseSeconds: number | null, expiresAt: number | null): void;
  deleteContext(id: string): void;
  insertIoas(ioas: StoredIoas): void;
  setAllowedRanges(ioasId: number, ranges: Range[]): void;
  deleteIoas(id: number): void;
  insertMapping(ioasId: number, m: Mapping): void;
  deleteMapping(ioasId: number, iova: bigint): void;
  /** Everything, for the start-up rebuild: mappings come sorted by (ioas, iova). */
  loadAllocator(): {
    contexts: Context[];
    ioas: StoredIoas[];
    /** Calls `sink` for every mapping, sorted by (ioas, iova). */
    eachMapping(sink: MappingRowSink): void;
  };
}

export type StoredHwpt = HwptRecord;

/** Write-through persistence of group holds, device opens, bindings, PASID attachments and hwpts. */
export interface OwnershipPort {
  putGroupHold(groupId: number, contextId: string, ioasId: number | null): void;
  deleteGroupHold(groupId: number): void;
  putDeviceOpen(deviceId: string, groupId: number, count: number): void;
  deleteDeviceOpen(deviceId: string): void;
  insertHwpt(h: StoredHwpt): void;
  deleteHwpt(id: number): void;
  putBinding(deviceId: string, contextId: string, hwptId: number | null, accessIoasId: number | null): void;
  deleteBinding(deviceId: string): void;
  putPasid(deviceId: string, pasid: number, hwptId: number): void;
  deletePasid(deviceId: string, pasid: number): void;
  loadOwnership(): {
    groupHolds: { groupId: number; contextId: string; ioasId: number | null }[];
    deviceOpens: { deviceId: string; groupId: number; count: number }[];
    hwpts: StoredHwpt[];
    bindings: { deviceId: string; contextId: string; hwptId: number | null; accessIoasId: number | null }[];
    pasids: { deviceId: string; pasid: number; hwptId: number }[];
  };
}

export interface Store extends InventoryPort, PrincipalPort, SystemPort, AuditPort, AllocatorPort, OwnershipPort {
  /** Runs fn atomically: everything it wrote commits together, or nothing does when it throws. */
  transaction<T>(fn: () => T): T;
}

/** Sources of randomness, injected so the core stays deterministic under test. */
export interface Secrets {
  newId(prefix: string): string;
  /** A fresh bearer token and the hash under which it is stored. */
  newToken(): { token: string; hash: string };
  hashToken(token: string): string;
}

