import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/errors.js';
import { domainTypeWarnings, isolationWarnings, parseAcsOverride, type PciFunction } from '../core/isolation.js';
import type { HostWarning, Iommu, IsolationWarning } from '../core/model.js';
import { hex } from '../core/u64.js';
import { parseOrFail } from '../schemas/problems.js';
import { iommuOut, TopologyInput, type TopologyDocument } from '../schemas/topology.js';
import {
  decodeAmd,
  decodeIntel,
  FALLBACK_IOMMU,
  intersectIommus,
  parseAmdFeatures,
  parseHexRegister,
  parseIommuCmdline,
  type IommuCmdline,
} from './iommu-caps.js';
import { parsePciConfig, type PciConfig } from './pci-config.js';
import { pciDescription } from './pci-names.js';

/**
 * Reads a real host from a sysfs tree (`--sysfs DIR`, SPEC 11), and never writes to it: only
 * readdir, readlink, stat and reads of files opened read-only.
 *
 * - groups: kernel/iommu_groups/N/{devices,reserved_regions,type};
 * - PCI functions: bus/pci/devices/* (driver, iommu_group, physfn, vendor, device, class,
 *   subsystem ids, config); their place in the hierarchy from the real device path
 *   (devices/pci0000:00/0000:00:01.0/0000:01:00.0: 00:01.0 is the bridge above 01:00.0);
 * - mdevs: bus/mdev/devices/* (parent from the link, type from mdev_type/name);
 * - IOMMU capabilities: class/iommu/* (see iommu-caps.ts);
 * - the kernel command line from `<proc>/cmdline` (pcie_acs_override, IOMMU options).
 * The result is the wire-form document, refused like any other import.
 */
export interface SysfsOptions {
  /** procfs directory (`--proc`, default /proc). */
  proc?: string;
}

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

interface WireRegion {
  start: string;
  last: string;
  type: string;
}

interface WireDevice {
  id: string;
  kind: 'pci' | 'vf' | 'mdev';
  groupId: number | null;
  parentId: string | null;
  driver: string;
  label: null;
  pasidCapable: boolean;
  vendor?: string | null;
  device?: string | null;
  class?: string | null;
  description: string | null;
  reservedRegions: WireRegion[];
}

interface HwGroup {
  members: Set<string>;
  regions: WireRegion[];
  type: string | null;
  /** vfio's unsafe no-IOMMU mode names its fake groups "vfio-noiommu": nothing translates them. */
  noIommu: boolean;
}

export function readSysfsTopology(root: string, options: SysfsOptions = {}): TopologyDocument {
  const pciDir = path.join(root, 'bus/pci/devices');
  if (!isDir(root)) fail('ENOENT', `sysfs tree ${root} does not exist`);
  if (!isDir(pciDir)) fail('ENOENT', `sysfs tree ${root} has no bus/pci/devices`);

  const host: HostWarning[] = [];
  const procDir = options.proc ?? '/proc';
  const cmdlineText = readText(path.join(procDir, 'cmdline'));
  if (cmdlineText === null) {
    host.push({ code: 'cmdline-unreadable', detail: `${procDir}/cmdline is not readable: whether the kernel runs with pcie_acs_override or IOMMU options is unknown (set --proc)` });
  }
  const cmdline = (cmdlineText ?? '').replace(/\0/g, ' ').trim();

  const hwGroups = readIommuGroups(root);
  if ([...hwGroups.values()].every((g) => g.noIommu)) fail('ENODEV', noIommuMessage(root, cmdline, hwGroups.size > 0));

  const override = parseAcsOverride(cmdline);
  if (override) {
    host.push({
      code: 'acs-override',
      detail: `the kernel runs with pcie_acs_override=${override.text}: it treats ports and multi-function devices without ACS as isolating, so some IOMMU groups are smaller than the hardware isolates (see the acs-override warnings of each group)`,
    });
  }

  // ---- PCI functions ----
  const places = devicePlaces(root);
  const functions: PciFunction[] = [];
  const devices: WireDevice[] = [];
  const noIommuGroupMembers: string[] = [];
  let partialConfig = 0;
  for (const addr of sortedEntries(pciDir)) {
    const dir = path.join(pciDir, addr);
    const place = places.get(addr);
    const linked = groupOf(dir, addr, hwGroups);
    const noIommu = linked !== null && hwGroups.get(linked)?.noIommu === true;
    if (noIommu) noIommuGroupMembers.push(addr);
    const groupId = noIommu ? null : linked;
    const pf = linkName(path.join(dir, 'physfn'));
    const config = readConfig(path.join(dir, 'config'));
    if (config.length < 256) partialConfig++;
    const vendor = readHex(path.join(dir, 'vendor'));
    const device = readHex(path.join(dir, 'device'));
    const klass = readHex(path.join(dir, 'class'));
    functions.push({
      id: addr,
      upstream: place?.upstream ?? null,
      groupId,
      vendor: vendor === null ? null : parseInt(vendor, 16),
      device: device === null ? null : parseInt(device, 16),
      multifunction: pf === null && config.multifunction === true, // a VF is never multi-function
      pcie: config.pcie,
      acs: config.acs,
    });
    devices.push({
      id: addr,
      kind: pf === null ? 'pci' : 'vf',
      groupId,
      parentId: pf,
      driver: linkName(path.join(dir, 'driver')) ?? 'none',
      label: null,
      pasidCapable: config.pasid === true,
      vendor,
      device,
      class: klass,
      description: pciDescription(klass, vendor, device, readHex(path.join(dir, 'subsystem_vendor')), readHex(path.join(dir, 'subsystem_device'))),
      reservedRegions: [],
    });
  }
  if (partialConfig > 0) {
    host.push({
      code: 'config-space-partial',
      detail: `the PCI configuration space of ${partialConfig} function(s) was not readable past its first 64 bytes (only root reads it whole): port types, ACS and PASID capabilities are unknown there, so missing ACS is inferred only from how the kernel grouped devices, and those devices count as not PASID-capable; run ioasd as root for the full analysis`,
    });
  }
  if (noIommuGroupMembers.length > 0) {
    host.push({
      code: 'vfio-noiommu',
      detail: `vfio runs in its unsafe no-IOMMU mode (enable_unsafe_noiommu_mode): ${noIommuGroupMembers.join(', ')} sit in vfio-noiommu groups that nothing translates; ioasd lists them without a group, never assignable`,
    });
  }
  if (places.size === 0 && functions.length > 0) {
    host.push({ code: 'hierarchy-unknown', detail: `no PCI hierarchy under ${root}/devices (a copy without its links?): ports above devices could not be checked for ACS` });
  }

  // ---- mdevs: virtual groups; the parent isolates them ----
  const mdevDir = path.join(root, 'bus/mdev/devices');
  if (isDir(mdevDir)) {
    for (const uuid of sortedEntries(mdevDir)) {
      const entry = path.join(mdevDir, uuid);
      const groupId = groupOf(entry, uuid, hwGroups);
      if (groupId === null) continue; // an mdev without a group is not usable through VFIO at all
      const typeName = readText(path.join(entry, 'mdev_type/name'))?.trim() || null;
      const typeId = linkName(path.join(entry, 'mdev_type'));
      devices.push({
        id: uuid,
        kind: 'mdev',
        groupId,
        parentId: mdevParent(entry, uuid, pciDir),
        driver: linkName(path.join(entry, 'driver')) ?? 'none',
        label: null,
        pasidCapable: false,
        description: typeId || typeName ? `mdev ${[typeId, typeName && typeName !== typeId ? `(${typeName})` : null].filter(Boolean).join(' ')}` : 'mdev',
        reservedRegions: [],
      });
    }
  }

  // ---- groups: those of the devices kept; mdev groups are virtual although the kernel lists them ----
  const warnings = isolationWarnings(functions, override);
  const kinds = new Map<number, 'iommu' | 'virtual'>();
  for (const d of devices) if (d.groupId !== null && !kinds.has(d.groupId)) kinds.set(d.groupId, d.kind === 'mdev' ? 'virtual' : 'iommu');
  const groups = [...kinds]
    .sort(([a], [b]) => a - b)
    .map(([id, kind]) => {
      const hw = hwGroups.get(id);
      const type = kind === 'iommu' ? (hw?.type ?? null) : null;
      const list: IsolationWarning[] = kind === 'iommu' ? [...(warnings.get(id) ?? []), ...domainTypeWarnings(type)] : [];
      return { id, kind, type, warnings: list };
    });

  // ---- reserved regions: those every hardware group has are iommu-wide, the rest the group's devices' ----
  const hardware = groups.filter((g) => g.kind === 'iommu').map((g) => hwGroups.get(g.id)?.regions ?? []);
  const key = (r: WireRegion) => `${r.start}-${r.last}-${r.type}`;
  const common = hardware.length === 0 ? [] : hardware[0]!.filter((r) => hardware.every((list) => list.some((x) => key(x) === key(r))));
  const commonKeys = new Set(common.map(key));
  for (const d of devices) {
    if (d.kind === 'mdev' || d.groupId === null) continue;
    d.reservedRegions = (hwGroups.get(d.groupId)?.regions ?? []).filter((r) => !commonKeys.has(key(r)));
  }

  const iommu = { ...iommuOut(readIommu(root, parseIommuCmdline(cmdline), host)), reservedRegions: common };
  return parseOrFail(TopologyInput, { iommu, groups, devices, warnings: host }, 'sysfs tree ' + root);
}

/** The refusal of a host without IOMMU groups: the likely cause and the alternative. */
function noIommuMessage(root: string, cmdline: string, onlyNoIommu: boolean): string {
  const off = cmdline.split(/\s+/).filter((a) => /^(intel_iommu|amd_iommu)=(.*,)?off(,|$)|^iommu=off$/.test(a));
  const cause = onlyNoIommu
    ? 'its only groups are vfio-noiommu ones (vfio runs without an IOMMU)'
    : 'there are none';
  return (
    `no IOMMU groups under ${root}/kernel/iommu_groups (${cause}): the IOMMU is off or absent, so no device could be isolated. ` +
    `Enable VT-d or AMD-Vi (IOMMU) in the firmware and boot with intel_iommu=on (Intel) or amd_iommu=on (AMD)` +
    (off.length > 0 ? ` — the kernel command line has ${off.join(' ')}` : '') +
    `; or describe the inventory with --topology FILE instead of --sysfs`
  );
}

/** kernel/iommu_groups/<N>: members, reserved regions, default domain type. */
function readIommuGroups(root: string): Map<number, HwGroup> {
  const groups = new Map<number, HwGroup>();
  const dir = path.join(root, 'kernel/iommu_groups');
  if (!isDir(dir)) return groups;
  for (const name of sortedEntries(dir)) {
    const id = groupNumber(name);
    if (id === null) continue;
    const devicesDir = path.join(dir, name, 'devices');
    groups.set(id, {
      members: new Set(isDir(devicesDir) ? fs.readdirSync(devicesDir) : []),
      regions: readRegions(path.join(dir, name, 'reserved_regions')),
      type: readText(path.join(dir, name, 'type'))?.trim() || null,
      noIommu: readText(path.join(dir, name, 'name'))?.trim() === 'vfio-noiommu',
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
    // Normalised to short lowercase hex so that equal windows from different groups compare equal.
    regions.push({ start: hex(BigInt(start)), last: hex(BigInt(last)), type });
  }
  return regions;
}

/**
 * Where each PCI function sits: the real device directories under devices/pci<domain>:<bus>,
 * walked without following links. The directory holding a function is the bridge above it, or the
 * host bridge (a root bus) when it is not a PCI address.
 */
function devicePlaces(root: string): Map<string, { dir: string; upstream: string | null }> {
  const out = new Map<string, { dir: string; upstream: string | null }>();
  const devicesDir = path.join(root, 'devices');
  if (!isDir(devicesDir)) return out;
  const walk = (dir: string, upstream: string | null, depth: number): void => {
    if (depth > 32) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || !PCI_ADDRESS.test(e.name)) continue;
      const sub = path.join(dir, e.name);
      if (!out.has(e.name)) out.set(e.name, { dir: sub, upstream });
      walk(sub, e.name, depth + 1);
    }
  };
  for (const e of fs.readdirSync(devicesDir, { withFileTypes: true })) {
    if (e.isDirectory() && /^pci[0-9a-f]{4}:[0-9a-f]{2}$/.test(e.name)) walk(path.join(devicesDir, e.name), null, 0);
  }
  return out;
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

/**
 * class/iommu/<unit>: Intel units show intel-iommu/{cap,ecap}, AMD units amd-iommu/{cap,features}.
 * Several units (a GPU's and the rest, one per socket or PCI segment): what every unit offers.
 */
function readIommu(root: string, cmd: IommuCmdline, host: HostWarning[]): Iommu {
  const dir = path.join(root, 'class/iommu');
  const decoded: { name: string; iommu: Iommu }[] = [];
  const unreadable: string[] = [];
  for (const name of isDir(dir) ? sortedEntries(dir) : []) {
    const unit = path.join(dir, name);
    const cap = parseHexRegister(readText(path.join(unit, 'intel-iommu/cap')));
    const ecap = parseHexRegister(readText(path.join(unit, 'intel-iommu/ecap')));
    if (cap !== null && ecap !== null) {
      decoded.push({ name, iommu: decodeIntel({ name, cap, ecap }, cmd) });
      continue;
    }
    const amdCap = parseHexRegister(readText(path.join(unit, 'amd-iommu/cap')));
    const features = parseAmdFeatures(readText(path.join(unit, 'amd-iommu/features')) ?? '');
    if (amdCap !== null && features !== null) {
      decoded.push({ name, iommu: decodeAmd({ name, cap: Number(amdCap & 0xffffffffn), ...features }, cmd) });
      continue;
    }
    unreadable.push(name);
  }
  if (decoded.length === 0) {
    host.push({
      code: 'iommu-capabilities-unknown',
      detail: `no readable Intel VT-d (intel-iommu/cap, ecap) or AMD-Vi (amd-iommu/cap, features) registers under ${dir}${unreadable.length > 0 ? ` (units ${unreadable.join(', ')})` : ''}: assuming a 4 KiB page, a 48-bit aperture, no PASID, nesting or dirty tracking`,
    });
    return FALLBACK_IOMMU;
  }
  if (unreadable.length > 0) {
    host.push({ code: 'iommu-unit-unreadable', detail: `the registers of IOMMU unit(s) ${unreadable.join(', ')} are not readable: the capabilities are those of ${decoded.map((d) => d.name).join(', ')}` });
  }
  const signature = (i: Iommu) => JSON.stringify(iommuOut(i));
  if (new Set(decoded.map((d) => signature(d.iommu))).size > 1) {
    host.push({
      code: 'iommu-units-differ',
      detail: `IOMMU units ${decoded.map((d) => d.name).join(', ')} offer different capabilities: ioasd uses what every one of them offers`,
    });
  }
  return intersectIommus(decoded.map((d) => d.iommu));
}

function readConfig(file: string): PciConfig {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file); // opened read-only; the kernel returns 64 bytes to non-root
  } catch {
    bytes = new Uint8Array(0);
  }
  return parsePciConfig(bytes);
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
    return null; // missing, unreadable, or a directory
  }
}

/** vendor/device/class files: `0x10de\n`; lowercased as the schema's consumers expect. */
function readHex(file: string): string | null {
  const text = readText(file)?.trim().toLowerCase();
  return text && /^0x[0-9a-f]{1,8}$/.test(text) ? text : null;
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
