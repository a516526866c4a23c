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

/**
 * Why a group may isolate less than it seems (SPEC 11), found by reading a real host: `no-acs` (a
 * port above lacks ACS), `multifunction-no-acs`, `acs-override` (the kernel was told to pretend),
 * `identity-domain` (DMA not translated), `no-iommu` (a device without an IOMMU group).
 */
export type IsolationWarningCode = 'no-acs' | 'multifunction-no-acs' | 'acs-override' | 'identity-domain' | 'no-iommu';
export const ISOLATION_WARNING_CODES: readonly IsolationWarningCode[] = ['no-acs', 'multifunction-no-acs', 'acs-override', 'identity-domain', 'no-iommu'];

export interface IsolationWarning {
  code: IsolationWarningCode;
  /** The device the finding is about (a port, a function), when it is one. */
  deviceId?: string;
  detail: string;
}

/** Something about the host as a whole that the loader could not read or had to assume. */
export interface HostWarning {
  code: string;
  detail: string;
}

export interface GroupRecord {
  id: number;
  kind: GroupKind;
  /** The kernel's default domain type from sysfs (`DMA`, `DMA-FQ`, `identity`, ...); null when not read from a host. */
  type?: string | null;
  warnings?: IsolationWarning[];
}

export interface Device {
  id: string;
  kind: DeviceKind;
  /** null: the device has no IOMMU group (no IOMMU translates it), so it is never assignable. */
  groupId: number | null;
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
  /** Findings about the host as a whole (absent: none, or not read from a host). */
  hostWarnings?: HostWarning[];
}

export type Role = 'admin' | 'user';

export interface Quotas {
  maxIoas: number;
  maxMappings: number;
  maxPinnedBytes: bigint;
  maxPasids: number;
  /** Contexts a principal may hold at once (SPEC 10). */
  maxContexts: number;
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

/**
 * Everything with an id that others can hold, as the kernel's iommufd has it (struct iommufd_object):
 * a type, an id, the context that owns it (the open file it lives in) and its users. An object is
 * destroyed only when nothing uses it (EBUSY otherwise); a context's objects go leaves first when the
 * context goes. The table and its rules live in objects.ts.
 */
export type ObjectType = 'context' | 'ioas' | 'hwpt' | 'group-hold' | 'device-open' | 'binding' | 'attachment' | 'pasid-attachment';

/** A typed reference to an object: what one object records of another it uses. */
export interface ObjectRef<T extends ObjectType = ObjectType> {
  readonly type: T;
  readonly id: number | string;
}

export interface CoreObject extends ObjectRef {
  contextId: string;
  principalId: string;
  /** The objects holding this one (the kernel's obj->users): it cannot be destroyed while any remain. */
  readonly users: Set<CoreObject>;
}

/** A context as stored. */
export interface ContextRecord {
  id: string;
  principalId: string;
  name: string | null;
  /** Lease length; null for a context that lives until deleted. */
  leaseSeconds: number | null;
  /** Epoch milliseconds after which the context is released, or null. */
  expiresAt: number | null;
  createdAt: string;
}

/** A context: what a process's open /dev/iommu (or container) file is to the kernel; it owns everything else. */
export interface Context extends Omit<ContextRecord, 'id'>, CoreObject {
  readonly type: 'context';
  readonly id: string;
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

export type HwptKind = 'paging' | 'nested';

/**
 * A hardware page table (device-first). A paging hwpt translates through an IOAS (automatic: made for
 * the first device attached to the IOAS; manual: allocated by POST /hwpts); a nested hwpt is a
 * stage-1 table over a paging parent allocated with nestParent. This is what is stored of one.
 */
export interface HwptRecord {
  id: number;
  contextId: string;
  kind: HwptKind;
  ioasId: number;
  parentId: number | null;
  auto: boolean;
  nestParent: boolean;
  pasid: boolean;
  dirtyTracking: boolean;
  data: unknown;
  createdAt: string;
}

/**
 * A hwpt in memory: its record as an object. It uses its IOAS (paging) or its parent (nested); its
 * users are the devices attached to it, PASID attachments and nested children.
 */
export interface Hwpt extends Omit<HwptRecord, 'id'>, CoreObject {
  readonly type: 'hwpt';
  readonly id: number;
}

/** group-first: a context holding a group open, maybe in a container (then it uses that IOAS). Its users are its device opens. */
export interface GroupHold extends CoreObject {
  readonly type: 'group-hold';
  /** The group id. */
  readonly id: number;
  readonly groupId: number;
  ioasId: number | null;
}

/** group-first: a device of an open group opened (a count of opens, as VFIO keeps). */
export interface DeviceOpen extends CoreObject {
  readonly type: 'device-open';
  /** The device id. */
  readonly id: string;
  readonly deviceId: string;
  readonly groupId: number;
  count: number;
}

/** device-first: a device bound to a context. Its users are its attachment and PASID attachments. */
export interface Binding extends CoreObject {
  readonly type: 'binding';
  /** The device id. */
  readonly id: string;
  readonly deviceId: string;
  readonly groupId: number;
  attachment: Attachment | null;
  readonly pasids: Map<number, PasidAttachment>;
}

/**
 * device-first: a bound device's RID attached to a page table: a hwpt, or for a virtual device the
 * IOAS its parent accesses on its behalf. It uses its target and its binding.
 */
export interface Attachment extends CoreObject {
  readonly type: 'attachment';
  /** The device id. */
  readonly id: string;
  readonly deviceId: string;
  readonly target: ObjectRef<'hwpt' | 'ioas'> & { readonly id: number };
}

/** device-first: one PASID of a bound device attached to a hwpt allocated for PASID use. */
export interface PasidAttachment extends CoreObject {
  readonly type: 'pasid-attachment';
  /** "deviceId/pasid": a key in the table, never parsed. */
  readonly id: string;
  readonly deviceId: string;
  readonly pasid: number;
  readonly hwptId: number;
}

/** Who holds a group: a context (and its principal). */
export interface Owner {
  contextId: string;
  principalId: string;
}
