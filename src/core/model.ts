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
