import { fail, type FieldProblem } from './errors.js';
import { groupKindFor, isVirtualKind } from './devices.js';
import type { Device, GroupRecord, Iommu, Range, Topology } from './model.js';

/** domain:bus:device.function, lowercase hex, as sysfs names PCI functions. */
export const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

/**
 * Checks that a topology hangs together: unique ids, every device in an existing group of the right
 * kind, every parent present, no group left empty. Returns every problem, not just the first, so an
 * admin can fix a document in one go. `groupMembers` carries the optional `devices` lists a document
 * may give per group; they must agree with the devices' own groupId.
 */
export function topologyProblems(topology: Topology, groupMembers: ReadonlyMap<number, readonly string[]> = new Map()): FieldProblem[] {
  const problems: FieldProblem[] = [];
  problems.push(...iommuProblems(topology.iommu));

  const groups = new Map<number, GroupRecord>();
  topology.groups.forEach((g, i) => {
    if (groups.has(g.id)) problems.push({ path: `groups[${i}].id`, message: `group ${g.id} is named twice` });
    else groups.set(g.id, g);
  });

  const devices = new Map<string, Device>();
  topology.devices.forEach((d, i) => {
    if (devices.has(d.id)) problems.push({ path: `devices[${i}].id`, message: `device ${d.id} is named twice` });
    else devices.set(d.id, d);
  });

  const claimedBy = new Map<string, number>();
  for (const [groupId, members] of groupMembers) {
    const gi = topology.groups.findIndex((g) => g.id === groupId);
    for (const id of members) {
      const other = claimedBy.get(id);
      if (other !== undefined && other !== groupId) {
        problems.push({ path: `groups[${gi}].devices`, message: `device ${id} is put in two groups (${other} and ${groupId})` });
        continue;
      }
      claimedBy.set(id, groupId);
      const d = devices.get(id);
      if (!d) problems.push({ path: `groups[${gi}].devices`, message: `group ${groupId} lists unknown device ${id}` });
      else if (d.groupId !== groupId) {
        problems.push({ path: `groups[${gi}].devices`, message: `device ${id} is put in two groups (${groupId} and ${d.groupId})` });
      }
    }
  }

  topology.devices.forEach((d, i) => {
    const at = `devices[${i}]`;
    if (!isVirtualKind(d.kind) && !PCI_ADDRESS.test(d.id)) {
      problems.push({ path: `${at}.id`, message: `${d.kind} device id ${d.id} is not a PCI address like 0000:01:00.0` });
    }
    // No group: a hardware function no IOMMU translates (listed, never assignable). A virtual device
    // always has one: its parent isolates it.
    const group = d.groupId === null ? undefined : groups.get(d.groupId);
    if (d.groupId === null) {
      if (isVirtualKind(d.kind)) problems.push({ path: `${at}.groupId`, message: `${d.kind} device ${d.id} needs a group` });
    } else if (!group) problems.push({ path: `${at}.groupId`, message: `device ${d.id} names missing group ${d.groupId}` });
    else if (group.kind !== groupKindFor(d.kind)) {
      problems.push({ path: `${at}.groupId`, message: `${d.kind} device ${d.id} cannot be in ${group.kind} group ${group.id}` });
    }
    problems.push(...parentProblems(d, devices, at));
    d.reservedRegions.forEach((r, j) => {
      if (r.start > r.last) problems.push({ path: `${at}.reservedRegions[${j}]`, message: 'start is after last' });
    });
  });

  const used = new Set(topology.devices.map((d) => d.groupId));
  topology.groups.forEach((g, i) => {
    if (!used.has(g.id)) problems.push({ path: `groups[${i}]`, message: `group ${g.id} has no device` });
  });
  return problems;
}

function parentProblems(d: Device, devices: ReadonlyMap<string, Device>, at: string): FieldProblem[] {
  // Only VFs and virtual devices hang off a parent (VF -> PF, mdev -> parent); a pci function has
  // none, which also keeps the parent chain at most two deep and free of cycles.
  if (d.kind === 'pci') {
    return d.parentId === null ? [] : [{ path: `${at}.parentId`, message: `pci device ${d.id} cannot have a parent` }];
  }
  if (d.parentId === null) return [{ path: `${at}.parentId`, message: `${d.kind} device ${d.id} needs a parent` }];
  if (d.parentId === d.id) return [{ path: `${at}.parentId`, message: `device ${d.id} is its own parent` }];
  const parent = devices.get(d.parentId);
  if (!parent) return [{ path: `${at}.parentId`, message: `device ${d.id} names missing parent ${d.parentId}` }];
  if (isVirtualKind(parent.kind)) {
    return [{ path: `${at}.parentId`, message: `parent ${parent.id} of ${d.id} is itself a virtual device` }];
  }
  if (d.kind === 'vf' && parent.kind !== 'pci') {
    return [{ path: `${at}.parentId`, message: `VF ${d.id} needs a pci physical function as parent` }];
  }
  return [];
}

function rangeProblems(r: Range, path: string): FieldProblem[] {
  return r.start > r.last ? [{ path, message: 'start is after last' }] : [];
}

function iommuProblems(iommu: Iommu): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (iommu.pageSizes.length === 0) problems.push({ path: 'iommu.pageSizes', message: 'at least one page size is needed' });
  iommu.pageSizes.forEach((p, i) => {
    if (p === 0n || (p & (p - 1n)) !== 0n) problems.push({ path: `iommu.pageSizes[${i}]`, message: 'not a power of two' });
  });
  problems.push(...rangeProblems(iommu.aperture, 'iommu.aperture'));
  iommu.reservedRegions.forEach((r, i) => problems.push(...rangeProblems(r, `iommu.reservedRegions[${i}]`)));
  return problems;
}

/** Refuses a topology with every problem listed (400 EINVAL); nothing is imported. */
export function assertValidTopology(topology: Topology, groupMembers?: ReadonlyMap<number, readonly string[]>): void {
  const problems = topologyProblems(topology, groupMembers);
  if (problems.length > 0) {
    fail('EINVAL', `topology refused: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
  }
}

/**
 * Merge mode of an import: the document's iommu (when given), groups and devices replace those with
 * the same ids; everything else stays.
 */
export function mergeTopology(current: Topology, incoming: Partial<Topology> & Pick<Topology, 'groups' | 'devices'>): Topology {
  // Incoming lists are kept whole (duplicates included) so that validation of the result still sees them.
  const groupIds = new Set(incoming.groups.map((g) => g.id));
  const deviceIds = new Set(incoming.devices.map((d) => d.id));
  const merged: Topology = {
    iommu: incoming.iommu ?? current.iommu,
    groups: [...current.groups.filter((g) => !groupIds.has(g.id)), ...incoming.groups],
    devices: [...current.devices.filter((d) => !deviceIds.has(d.id)), ...incoming.devices],
  };
  const host = incoming.hostWarnings ?? current.hostWarnings;
  if (host) merged.hostWarnings = host;
  return merged;
}
