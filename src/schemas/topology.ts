import { z } from 'zod';
import { deviceWarnings } from '../core/isolation.js';
import { ISOLATION_WARNING_CODES, type Device, type GroupRecord, type HostWarning, type Iommu, type IsolationWarning, type ReservedRegion, type Topology } from '../core/model.js';
import { PCI_ADDRESS } from '../core/topology.js';
import { hex } from '../core/u64.js';
import { HexU64, U64Input } from './u64.js';

/** Wire form of the topology document (SPEC 7): what PUT /v1/topology and --topology FILE accept. */

const Label = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');
export const DeviceId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'a PCI address (0000:01:00.0) or a name of letters, digits and . _ : -');
export const DeviceKindSchema = z.enum(['pci', 'vf', 'mdev', 'vdpa']);
export const GroupKindSchema = z.enum(['iommu', 'virtual']);
export const DriverName = z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'a driver name such as vfio-pci, nvme or none');
const HexId = z.string().regex(/^0x[0-9a-fA-F]{1,8}$/).nullable().optional();

const RangeInput = z.object({ start: U64Input, last: U64Input });
const RegionInput = RangeInput.extend({ type: z.string().min(1).max(32).default('reserved') });

export const IommuInput = z.object({
  pageSizes: z.array(U64Input).min(1),
  aperture: RangeInput,
  reservedRegions: z.array(RegionInput).default([]),
  pasidBits: z.number().int().min(0).max(20).default(0),
  features: z
    .object({ nesting: z.boolean().default(false), pasid: z.boolean().default(false), dirtyTracking: z.boolean().default(false) })
    .prefault({}),
});

export const IsolationWarningSchema = z
  .object({
    code: z.enum(ISOLATION_WARNING_CODES as [IsolationWarning['code'], ...IsolationWarning['code'][]]),
    deviceId: DeviceId.optional().meta({ description: 'the port or function the finding is about' }),
    detail: z.string().min(1).max(1000),
  })
  .meta({ id: 'IsolationWarning', description: 'why a group may isolate less than it seems (read from a real host)' });

export const HostWarningSchema = z
  .object({ code: z.string().min(1).max(64), detail: z.string().min(1).max(1000) })
  .meta({ id: 'HostWarning', description: 'something about the host the loader could not read or had to assume' });

const GroupType = z.string().min(1).max(32).nullable();

export const DeviceInput = z
  .object({
    id: DeviceId,
    kind: DeviceKindSchema,
    groupId: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .nullable()
      .meta({ description: 'null: a PCI function with no IOMMU group (no IOMMU translates it): listed, never assignable' }),
    // Parents are pci or vf devices, so PCI addresses (checked with the rest of the document in core/topology.ts).
    parentId: DeviceId.nullable().default(null).meta({ description: 'the PF of a VF, the parent device of an mdev or vdpa', pattern: PCI_ADDRESS.source }),
    driver: DriverName.default('none'),
    label: Label.nullable().default(null),
    pasidCapable: z.boolean().default(false),
    resetGroup: z.string().min(1).max(64).nullable().default(null),
    vendor: HexId,
    device: HexId,
    class: z.string().regex(/^0x[0-9a-fA-F]{1,6}$/).nullable().optional(),
    description: z.string().max(200).nullable().optional(),
    reservedRegions: z.array(RegionInput).default([]),
  })
  // pci and vf ids are PCI addresses; virtual devices (mdev, vdpa) are named freely. core/topology.ts
  // checks it together with the document's other rules, so a refusal lists every problem at once;
  // the schema only states it.
  .meta({
    oneOf: [
      { properties: { kind: { enum: ['pci', 'vf'] }, id: { pattern: PCI_ADDRESS.source } } },
      { properties: { kind: { enum: ['mdev', 'vdpa'] } } },
    ],
  });

export const GroupInput = z.object({
  id: z.number().int().min(0).max(2 ** 31 - 1),
  kind: GroupKindSchema,
  type: GroupType.optional().meta({ description: "the kernel's default domain type (DMA, DMA-FQ, identity, blocked, unmanaged), when read from a host" }),
  warnings: z.array(IsolationWarningSchema).optional(),
  devices: z.array(DeviceId).optional().meta({ description: 'optional; when given it must agree with each device\'s groupId' }),
});

export const TopologyInput = z
  .object({
    iommu: IommuInput.optional().meta({ description: "absent: the current iommu capabilities stay (on a new database: the demo's)" }),
    groups: z.array(GroupInput),
    devices: z.array(DeviceInput),
    warnings: z.array(HostWarningSchema).optional().meta({ description: 'findings about the host as a whole (a replace import without them clears them)' }),
  })
  .meta({ id: 'TopologyDocument' });

export type TopologyDocument = z.output<typeof TopologyInput>;
export type DeviceDocument = z.output<typeof DeviceInput>;

export function toIommu(doc: z.output<typeof IommuInput>): Iommu {
  return { ...doc, reservedRegions: doc.reservedRegions.map(toRegion) };
}

function toRegion(r: z.output<typeof RegionInput>): ReservedRegion {
  return { start: r.start, last: r.last, type: r.type };
}

export function toDevice(d: DeviceDocument): Device {
  return {
    id: d.id,
    kind: d.kind,
    groupId: d.groupId,
    parentId: d.parentId,
    driver: d.driver,
    label: d.label,
    pasidCapable: d.pasidCapable,
    resetGroup: d.resetGroup,
    vendor: d.vendor?.toLowerCase() ?? null,
    device: d.device?.toLowerCase() ?? null,
    class: d.class?.toLowerCase() ?? null,
    description: d.description ?? null,
    reservedRegions: d.reservedRegions.map(toRegion),
  };
}

/** The core's view of a document, plus the per-group member lists it gave (checked by the core). */
export function fromDocument(doc: TopologyDocument, currentIommu?: Iommu): { topology: Topology; groupMembers: Map<number, string[]> } {
  const iommu = doc.iommu ? toIommu(doc.iommu) : currentIommu;
  if (!iommu) throw new Error('a topology document without iommu needs a current iommu');
  const groupMembers = new Map<number, string[]>();
  for (const g of doc.groups) if (g.devices) groupMembers.set(g.id, g.devices);
  const groups: GroupRecord[] = doc.groups.map((g) => ({ id: g.id, kind: g.kind, type: g.type ?? null, warnings: g.warnings ?? [] }));
  const topology: Topology = { iommu, groups, devices: doc.devices.map(toDevice) };
  if (doc.warnings) topology.hostWarnings = doc.warnings;
  return { topology, groupMembers };
}

// ---- responses -------------------------------------------------------------------------------

export const RangeOutput = z.object({ start: HexU64, last: HexU64 }).meta({ id: 'Range' });
export const RegionOutput = z.object({ start: HexU64, last: HexU64, type: z.string() }).meta({ id: 'ReservedRegion' });

export const IommuOutput = z
  .object({
    pageSizes: z.array(HexU64),
    aperture: RangeOutput,
    reservedRegions: z.array(RegionOutput),
    pasidBits: z.number().int(),
    features: z.object({ nesting: z.boolean(), pasid: z.boolean(), dirtyTracking: z.boolean() }),
  })
  .meta({ id: 'Iommu' });

export const DeviceOutput = z
  .object({
    id: z.string(),
    kind: DeviceKindSchema,
    groupId: z.number().int().nullable().meta({ description: 'null: no IOMMU group, never assignable' }),
    parentId: z.string().nullable(),
    driver: z.string(),
    label: z.string().nullable(),
    pasidCapable: z.boolean(),
    resetGroup: z.string().nullable(),
    vendor: z.string().nullable(),
    device: z.string().nullable(),
    class: z.string().nullable(),
    description: z.string().nullable(),
    reservedRegions: z.array(RegionOutput),
    warnings: z.array(IsolationWarningSchema).meta({ description: "its group's isolation warnings (the whole group goes with it), or no-iommu" }),
  })
  .meta({ id: 'Device' });

export const TopologyOutput = z
  .object({
    iommu: IommuOutput,
    groups: z.array(
      z.object({ id: z.number().int(), kind: GroupKindSchema, type: GroupType, warnings: z.array(IsolationWarningSchema), devices: z.array(z.string()) }),
    ),
    devices: z.array(DeviceOutput),
    warnings: z.array(HostWarningSchema),
  })
  .meta({ id: 'Topology' });

export function regionOut(r: ReservedRegion): z.output<typeof RegionOutput> {
  return { start: hex(r.start), last: hex(r.last), type: r.type };
}

export function iommuOut(i: Iommu): z.output<typeof IommuOutput> {
  return {
    pageSizes: i.pageSizes.map(hex),
    aperture: { start: hex(i.aperture.start), last: hex(i.aperture.last) },
    reservedRegions: i.reservedRegions.map(regionOut),
    pasidBits: i.pasidBits,
    features: i.features,
  };
}

/** A device on the wire, with the warnings of its group (see deviceWarnings). */
export function deviceOut(d: Device, group: GroupRecord | undefined): z.output<typeof DeviceOutput> {
  return { ...d, reservedRegions: d.reservedRegions.map(regionOut), warnings: deviceWarnings(d, group) };
}

export function topologyOut(t: Topology): z.output<typeof TopologyOutput> {
  const groups = new Map(t.groups.map((g) => [g.id, g]));
  return {
    iommu: iommuOut(t.iommu),
    groups: t.groups.map((g) => ({
      id: g.id,
      kind: g.kind,
      type: g.type ?? null,
      warnings: g.warnings ?? [],
      devices: t.devices.filter((d) => d.groupId === g.id).map((d) => d.id),
    })),
    devices: t.devices.map((d) => deviceOut(d, d.groupId === null ? undefined : groups.get(d.groupId))),
    warnings: hostWarningsOut(t.hostWarnings),
  };
}

export function hostWarningsOut(w: readonly HostWarning[] | undefined): HostWarning[] {
  return (w ?? []).map((x) => ({ code: x.code, detail: x.detail }));
}
