import type { Device, GroupRecord, Iommu, PolicyName, Principal } from './model.js';

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
  deleteGroup(id: number): void;
  listDevices(): Device[];
  getDevice(id: string): Device | undefined;
  devicesInGroup(groupId: number): Device[];
  childrenOf(deviceId: string): Device[];
  insertDevice(device: Device): void;
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

export interface Store extends InventoryPort, PrincipalPort, SystemPort, AuditPort {
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

