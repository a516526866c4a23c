/**
 * Plain domain data. Nothing here knows about HTTP or SQLite; addresses are bigint (see u64.ts).
 */

export interface Range {
  start: bigint;
  last: bigint;
}

export interface ReservedRegion extends Range {
  type: string;
}

export interface IommuFeatures {
  nesting: boolean;
  pasid: boolean;
  dirtyTracking: boolean;
}

export interface Iommu {
  pageSizes: bigint[];
  aperture: Range;
  reservedRegions: ReservedRegion[];
  pasidBits: number;
  features: IommuFeatures;
}

export type GroupKind = 'iommu' | 'virtual';
export type DeviceKind = 'pci' | 'vf' | 'mdev' | 'vdpa';

export interface GroupRecord {
  id: number;
  kind: GroupKind;
}

export interface Device {
  id: string;
  kind: DeviceKind;
  groupId: number;
  parentId: string | null;
  driver: string;
  label: string | null;
  pasidCapable: boolean;
  /** Devices sharing a reset group are reset together (a bus or slot reset). */
  resetGroup: string | null;
  vendor: string | null;
  device: string | null;
  class: string | null;
  description: string | null;
  /** Regions this device adds to the iommu-wide reserved regions (e.g. an RMRR). */
  reservedRegions: ReservedRegion[];
}

export interface Topology {
  iommu: Iommu;
  groups: GroupRecord[];
  devices: Device[];
}

export type Role = 'admin' | 'user';

export interface Quotas {
  maxIoas: number;
  maxMappings: number;
  maxPinnedBytes: bigint;
  maxPasids: number;
}

export interface Principal {
  id: string;
  name: string;
  role: Role;
  clearances: string[];
  quotas: Quotas;
  createdAt: string;
}

export type PolicyName = 'group-first' | 'device-first';
export const POLICIES: readonly PolicyName[] = ['group-first', 'device-first'];

export interface Context {
  id: string;
  principalId: string;
  name: string | null;
  /** Lease length; null for a context that lives until deleted. */
  leaseSeconds: number | null;
  /** Epoch milliseconds after which the context is released, or null. */
  expiresAt: number | null;
  createdAt: string;
}

/**
 * Pinned user memory behind one or more mappings (the kernel's iopt_pages): created by a map, shared
 * by copies, released with its last mapping. Its bytes are charged to maxPinnedBytes once.
 */
export interface Pages {
  id: number;
  principalId: string;
  bytes: bigint;
  writable: boolean;
  refs: number;
}

/** One mapped area: IOVA range -> user address. Mappings never merge and are never split. */
export interface Mapping {
  readonly iova: bigint;
  readonly last: bigint;
  readonly length: bigint;
  readonly userAddress: bigint;
  readonly read: boolean;
  readonly write: boolean;
  readonly pages: Pages;
}

/**
 * What one IOMMU domain brings to an address space: its smallest page size, aperture and reserved
 * regions (the iommu's plus those of the devices attached through it).
 */
export interface Domain {
  /** Who holds it: an automatic or manual hwpt id, or the container's IOMMU model. */
  key: string;
  minPageSize: bigint;
  aperture: Range;
  reserved: Range[];
}

export type RuleSet = 'iommufd' | 'type1v2';

export function ruleSetFor(policy: PolicyName): RuleSet {
  return policy === 'group-first' ? 'type1v2' : 'iommufd';
}
