import type { Blocker } from './errors.js';
import { isKernelDma } from './devices.js';
import type { Device, GroupRecord } from './model.js';

export interface GroupView extends GroupRecord {
  devices: string[];
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
export function groupView(group: GroupRecord, members: readonly Device[]): GroupView {
  const blockers = kernelDriverBlockers(members);
  return {
    ...group,
    devices: members.map((d) => d.id).sort(),
    viable: blockers.length === 0,
    blockers,
  };
}
