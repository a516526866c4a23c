import type { Blocker } from './errors.js';
import { isKernelDma } from './devices.js';
import type { Device, GroupRecord, IsolationWarning, ReservedRegion } from './model.js';

export interface GroupView extends GroupRecord {
  type: string | null;
  warnings: IsolationWarning[];
  devices: string[];
  /** The iommu-wide reserved regions plus those of its devices: what no mapping may cover. */
  reservedRegions: ReservedRegion[];
  /** True when no device of the group is held by a DMA-capable kernel driver. */
  viable: boolean;
  blockers: Blocker[];
}

/** The members on a DMA-capable kernel driver, each as a blocker naming its driver. */
export function kernelDriverBlockers(members: readonly Device[]): Blocker[] {
  return members.filter(isKernelDma).map((d) => ({ kind: 'device', id: d.id, reason: `bound to kernel driver ${d.driver}` }));
}

/**
 * A group is viable (VFIO's term) when every device in it is either unbound or bound to a driver that
 * does no DMA for the kernel; one kernel-DMA device makes the whole group unusable, because its
 * peers could DMA into it.
 */
export function groupView(group: GroupRecord, members: readonly Device[], iommuRegions: readonly ReservedRegion[] = []): GroupView {
  const blockers = kernelDriverBlockers(members);
  const regions = new Map<string, ReservedRegion>();
  for (const r of [...iommuRegions, ...members.flatMap((d) => d.reservedRegions)]) regions.set(`${r.start}-${r.last}-${r.type}`, r);
  return {
    id: group.id,
    kind: group.kind,
    type: group.type ?? null,
    warnings: group.warnings ?? [],
    devices: members.map((d) => d.id).sort(),
    reservedRegions: [...regions.values()].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)),
    viable: blockers.length === 0,
    blockers,
  };
}
