import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/errors.js';
import { hex } from '../core/u64.js';
import { parseOrFail } from '../schemas/problems.js';
import { iommuOut, toIommu, TopologyInput, type TopologyDocument } from '../schemas/topology.js';
import { demoTopology } from './demo.js';

/**
 * Reads the device ownership picture of a host from a sysfs tree (`--sysfs DIR`, SPEC 8): hardware
 * IOMMU groups, PCI functions (VFs through `physfn`), and mdevs with their virtual groups. `root` is
 * a sysfs mount or a copy of one. The result is the wire-form document, refused like any other import.
 */
export function readSysfsTopology(root: string): TopologyDocument {
  const pciDir = path.join(root, 'bus/pci/devices');
  if (!isDir(root)) fail('ENOENT', `sysfs tree ${root} does not exist`);
  if (!isDir(pciDir)) fail('ENOENT', `sysfs tree ${root} has no bus/pci/devices`);

  const hwGroups = readIommuGroups(root);
  const devices: WireDevice[] = [];

  for (const addr of sortedEntries(pciDir)) {
    const dir = path.join(pciDir, addr);
    const groupId = groupOf(dir, addr, hwGroups);
    if (groupId === null) continue; // no IOMMU group: the device cannot be isolated, so it cannot be handed out
    const pf = linkName(path.join(dir, 'physfn'));
    devices.push({
      id: addr,
      kind: pf === null ? 'pci' : 'vf',
      groupId,
      parentId: pf,
      driver: linkName(path.join(dir, 'driver')) ?? 'none',
      label: null,
      pasidCapable: false,
      vendor: readHex(path.join(dir, 'vendor')),
      device: readHex(path.join(dir, 'device')),
      class: readHex(path.join(dir, 'class')),
      reservedRegions: hwGroups.get(groupId)?.deviceRegions ?? [],
    });
  }

  const mdevDir = path.join(root, 'bus/mdev/devices');
  if (isDir(mdevDir)) {
    for (const uuid of sortedEntries(mdevDir)) {
      const entry = path.join(mdevDir, uuid);
      const groupId = groupOf(entry, uuid, hwGroups);
      if (groupId === null) continue;
      devices.push({
        id: uuid,
        kind: 'mdev',
        groupId,
        parentId: mdevParent(entry, uuid, pciDir),
        driver: linkName(path.join(entry, 'driver')) ?? 'none',
        label: null,
        pasidCapable: false,
        reservedRegions: [],
      });
    }
  }

  // Groups come from the devices kept, so a group whose members were all skipped (e.g. platform
  // devices, which ioasd does not model) does not turn up empty. mdev groups are virtual even though
  // the kernel also lists them under kernel/iommu_groups.
  const groupKinds = new Map<number, 'iommu' | 'virtual'>();
  for (const d of devices) if (!groupKinds.has(d.groupId)) groupKinds.set(d.groupId, d.kind === 'mdev' ? 'virtual' : 'iommu');
  const groups = [...groupKinds].sort(([a], [b]) => a - b).map(([id, kind]) => ({ id, kind }));

  const demoIommu = iommuOut(toIommu(demoTopology().iommu!));
  const msi = dedupeRegions([...hwGroups.values()].flatMap((g) => g.msiRegions));
  const iommu = { ...demoIommu, reservedRegions: msi.length > 0 ? msi : demoIommu.reservedRegions };

  return parseOrFail(TopologyInput, { iommu, groups, devices }, 'sysfs tree ' + root);
}

interface WireRegion {
  start: string;
  last: string;
  type: string;
}

interface WireDevice {
  id: string;
  kind: 'pci' | 'vf' | 'mdev';
  groupId: number;
  parentId: string | null;
  driver: string;
  label: null;
  pasidCapable: boolean;
  vendor?: string | null;
  device?: string | null;
  class?: string | null;
  reservedRegions: WireRegion[];
}

interface HwGroup {
  members: Set<string>;
  /** Non-MSI regions (direct, reserved...): they belong to the devices of this group. */
  deviceRegions: WireRegion[];
  /** MSI windows: the same doorbell on every group, so they become iommu-wide. */
  msiRegions: WireRegion[];
}

/** kernel/iommu_groups/<N>: members and reserved regions of each hardware group. */
function readIommuGroups(root: string): Map<number, HwGroup> {
  const groups = new Map<number, HwGroup>();
  const dir = path.join(root, 'kernel/iommu_groups');
  if (!isDir(dir)) return groups;
  for (const name of sortedEntries(dir)) {
    const id = groupNumber(name);
    if (id === null) continue;
    const devicesDir = path.join(dir, name, 'devices');
    const members = new Set(isDir(devicesDir) ? fs.readdirSync(devicesDir) : []);
    const regions = readRegions(path.join(dir, name, 'reserved_regions'));
    groups.set(id, {
      members,
      deviceRegions: regions.filter((r) => r.type !== 'msi'),
      msiRegions: regions.filter((r) => r.type === 'msi'),
    });
  }
  return groups;
}

/** Lines of `<start> <end> <type>`, inclusive end, as the kernel prints them. Malformed lines are ignored. */
function readRegions(file: string): WireRegion[] {
  const text = readText(file);
  if (text === null) return [];
  const regions: WireRegion[] = [];
  for (const line of text.split('\n')) {
    const [start, last, type] = line.trim().split(/\s+/);
    if (!start || !last || !type || !/^0x[0-9a-f]+$/i.test(start) || !/^0x[0-9a-f]+$/i.test(last)) continue;
    // Normalised to short lowercase hex so that equal windows from different groups dedupe.
    regions.push({ start: hex(BigInt(start)), last: hex(BigInt(last)), type });
  }
  return regions;
}

function dedupeRegions(regions: WireRegion[]): WireRegion[] {
  const seen = new Map<string, WireRegion>();
  for (const r of regions) seen.set(`${r.start}-${r.last}-${r.type}`, r);
  return [...seen.values()];
}

/**
 * The group of a device: its `iommu_group` link, or, when that is missing or not a link (a copied
 * tree with links dereferenced), the kernel/iommu_groups entry that lists it.
 */
function groupOf(dir: string, name: string, hwGroups: Map<number, HwGroup>): number | null {
  const linked = linkName(path.join(dir, 'iommu_group'));
  const id = linked === null ? null : groupNumber(linked);
  if (id !== null) return id;
  for (const [gid, g] of hwGroups) if (g.members.has(name)) return gid;
  return null;
}

/**
 * The parent of an mdev: its directory lives inside the parent's (…/0000:05:00.0/<uuid>), so the
 * bus/mdev link target names it. Without a link, look for the PCI device directory holding the uuid.
 */
function mdevParent(entry: string, uuid: string, pciDir: string): string | null {
  const target = readLink(entry);
  if (target !== null) return path.basename(path.dirname(target));
  return sortedEntries(pciDir).find((addr) => fs.existsSync(path.join(pciDir, addr, uuid))) ?? null;
}

function groupNumber(name: string): number | null {
  if (!/^\d+$/.test(name)) return null;
  const n = Number(name);
  return n <= 2 ** 31 - 1 ? n : null;
}

/**
 * What a sysfs link names (`driver`, `iommu_group`, `physfn`): its target's basename. A plain file
 * holding the name is accepted too; anything else (missing, or a dereferenced directory) gives null.
 */
function linkName(file: string): string | null {
  const target = readLink(file);
  if (target !== null) return path.basename(target);
  const text = readText(file)?.trim();
  return text ? text : null;
}

function readLink(file: string): string | null {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null; // missing, or not a symlink
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null; // missing, or a directory
  }
}

/** vendor/device/class files: `0x10de\n`; lowercased as the schema's consumers expect. */
function readHex(file: string): string | null {
  const text = readText(file)?.trim().toLowerCase();
  return text ? text : null;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function sortedEntries(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
