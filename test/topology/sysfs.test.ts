import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IoasdError } from '../../src/core/errors.js';
import { topologyProblems } from '../../src/core/topology.js';
import { fromDocument } from '../../src/schemas/topology.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';

// Fake sysfs trees laid out as the kernel does: real device directories under devices/, reached
// through relative symlinks from bus/ and kernel/iommu_groups/.

const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) fs.rmSync(root, { recursive: true, force: true });
});

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ioasd-sysfs-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'bus/pci/devices'), { recursive: true });
  return root;
}

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

function link(root: string, rel: string, target: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.symlinkSync(target, path.join(root, rel));
}

interface PciOptions {
  vendor?: string;
  device?: string;
  class?: string;
  driver?: string;
  group?: number;
  physfn?: string;
}

/** A PCI function at devices/pci0000:00/<addr>, listed in bus/pci/devices and its iommu group. */
function pci(root: string, addr: string, o: PciOptions = {}): void {
  const dev = `devices/pci0000:00/${addr}`;
  write(root, `${dev}/vendor`, `${o.vendor ?? '0x8086'}\n`);
  write(root, `${dev}/device`, `${o.device ?? '0x1234'}\n`);
  write(root, `${dev}/class`, `${o.class ?? '0x020000'}\n`);
  link(root, `bus/pci/devices/${addr}`, `../../../${dev}`);
  if (o.driver) link(root, `${dev}/driver`, `../../../bus/pci/drivers/${o.driver}`);
  if (o.physfn) link(root, `${dev}/physfn`, `../${o.physfn}`);
  if (o.group !== undefined) {
    link(root, `${dev}/iommu_group`, `../../../kernel/iommu_groups/${o.group}`);
    link(root, `kernel/iommu_groups/${o.group}/devices/${addr}`, `../../../../${dev}`);
  }
}

/** An mdev whose directory lives inside its parent's, as the kernel creates it. */
function mdev(root: string, uuid: string, parent: string, group: number, driver = 'vfio_mdev'): void {
  const dev = `devices/pci0000:00/${parent}/${uuid}`;
  fs.mkdirSync(path.join(root, dev), { recursive: true });
  link(root, `bus/mdev/devices/${uuid}`, `../../../${dev}`);
  link(root, `${dev}/iommu_group`, `../../../../kernel/iommu_groups/${group}`);
  link(root, `${dev}/driver`, `../../../../bus/mdev/drivers/${driver}`);
  // The kernel lists mdev groups under kernel/iommu_groups too; they must still come out virtual.
  link(root, `kernel/iommu_groups/${group}/devices/${uuid}`, `../../../../${dev}`);
}

const UUID1 = 'c0ffee00-0000-4000-8000-000000000001';
const UUID2 = 'c0ffee00-0000-4000-8000-000000000002';

describe('readSysfsTopology', () => {
  it('reads a two-function group with its drivers, ids lowercased', () => {
    const root = tree();
    pci(root, '0000:01:00.0', { vendor: '0x10DE', device: '0x2684', class: '0x030000', driver: 'vfio-pci', group: 1 });
    pci(root, '0000:01:00.1', { vendor: '0x10de', device: '0x22BA', class: '0x040300', driver: 'snd_hda_intel', group: 1 });

    const doc = readSysfsTopology(root);

    expect(doc.groups).toEqual([{ id: 1, kind: 'iommu', type: null, warnings: [] }]);
    expect(doc.devices.map((d) => [d.id, d.kind, d.groupId, d.driver, d.parentId])).toEqual([
      ['0000:01:00.0', 'pci', 1, 'vfio-pci', null],
      ['0000:01:00.1', 'pci', 1, 'snd_hda_intel', null],
    ]);
    expect(doc.devices[0]).toMatchObject({ vendor: '0x10de', device: '0x2684', class: '0x030000', label: null, pasidCapable: false });
    expect(doc.devices[1]).toMatchObject({ device: '0x22ba' });
  });

  it('makes a device with a physfn link a VF of that PF', () => {
    const root = tree();
    pci(root, '0000:02:00.0', { driver: 'ice', group: 2 });
    pci(root, '0000:02:01.0', { driver: 'vfio-pci', group: 3, physfn: '0000:02:00.0' });

    const doc = readSysfsTopology(root);

    expect(doc.devices.find((d) => d.id === '0000:02:00.0')).toMatchObject({ kind: 'pci', parentId: null });
    expect(doc.devices.find((d) => d.id === '0000:02:01.0')).toMatchObject({ kind: 'vf', parentId: '0000:02:00.0', groupId: 3 });
  });

  it('gives a device without a driver link driver none, and lists a device without a group with groupId null', () => {
    const root = tree();
    pci(root, '0000:03:00.0', { group: 7 });
    pci(root, '0000:09:00.0', { driver: 'nvme' }); // no IOMMU group: listed, never assignable

    const doc = readSysfsTopology(root);

    expect(doc.devices.map((d) => [d.id, d.driver, d.groupId])).toEqual([
      ['0000:03:00.0', 'none', 7],
      ['0000:09:00.0', 'nvme', null],
    ]);
    expect(doc.groups).toEqual([{ id: 7, kind: 'iommu', type: null, warnings: [] }]);
  });

  it('finds an mdev parent through the bus/mdev link, and lets mdevs share a virtual group', () => {
    const root = tree();
    pci(root, '0000:05:00.0', { driver: 'i915', class: '0x030000', group: 10 });
    mdev(root, UUID1, '0000:05:00.0', 100);
    mdev(root, UUID2, '0000:05:00.0', 100);

    const doc = readSysfsTopology(root);

    expect(doc.groups).toEqual([
      { id: 10, kind: 'iommu', type: null, warnings: [] },
      { id: 100, kind: 'virtual', type: null, warnings: [] },
    ]);
    for (const id of [UUID1, UUID2]) {
      expect(doc.devices.find((d) => d.id === id)).toMatchObject({
        kind: 'mdev',
        groupId: 100,
        parentId: '0000:05:00.0',
        driver: 'vfio_mdev',
        label: null,
      });
    }
  });

  it('puts msi regions on the iommu once and other regions on the devices of their group', () => {
    const root = tree();
    pci(root, '0000:00:14.0', { driver: 'xhci_hcd', group: 8 });
    pci(root, '0000:00:17.0', { driver: 'ahci', group: 8 });
    pci(root, '0000:01:00.0', { driver: 'vfio-pci', group: 1 });
    write(root, 'kernel/iommu_groups/8/reserved_regions',
      '0x000000007a000000 0x000000007a0fffff direct\n0x00000000fee00000 0x00000000feefffff msi\n');
    write(root, 'kernel/iommu_groups/1/reserved_regions', '0x00000000fee00000 0x00000000feefffff msi\n');

    const doc = readSysfsTopology(root);

    expect(doc.iommu?.reservedRegions).toEqual([{ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' }]);
    const direct = [{ start: 0x7a000000n, last: 0x7a0fffffn, type: 'direct' }];
    expect(doc.devices.find((d) => d.id === '0000:00:14.0')?.reservedRegions).toEqual(direct);
    expect(doc.devices.find((d) => d.id === '0000:00:17.0')?.reservedRegions).toEqual(direct);
    expect(doc.devices.find((d) => d.id === '0000:01:00.0')?.reservedRegions).toEqual([]);
  });

  it('falls back to a 4 KiB page and a 48-bit aperture, with a warning, when no IOMMU registers are readable; regions only from the tree', () => {
    const root = tree();
    pci(root, '0000:01:00.0', { group: 1 });

    const doc = readSysfsTopology(root, { proc: root }); // no cmdline there either
    const iommu = doc.iommu;

    expect(iommu?.reservedRegions).toEqual([]);
    expect(iommu?.pageSizes).toEqual([0x1000n]);
    expect(iommu?.aperture).toEqual({ start: 0n, last: (1n << 48n) - 1n });
    expect(iommu?.pasidBits).toBe(0);
    expect(iommu?.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
    expect(doc.warnings?.map((w) => w.code)).toEqual(['cmdline-unreadable', 'config-space-partial', 'iommu-capabilities-unknown']);
  });

  it('falls back to kernel/iommu_groups membership when a device has no iommu_group link', () => {
    const root = tree();
    pci(root, '0000:01:00.0', { group: 4 });
    fs.unlinkSync(path.join(root, 'devices/pci0000:00/0000:01:00.0/iommu_group'));

    expect(readSysfsTopology(root).devices[0]).toMatchObject({ id: '0000:01:00.0', groupId: 4 });
  });

  it('yields a topology that passes the semantic checks', () => {
    const root = tree();
    pci(root, '0000:01:00.0', { driver: 'vfio-pci', group: 1 });
    pci(root, '0000:01:00.1', { driver: 'snd_hda_intel', group: 1 });
    pci(root, '0000:02:00.0', { driver: 'ice', group: 2 });
    pci(root, '0000:02:01.0', { driver: 'vfio-pci', group: 3, physfn: '0000:02:00.0' });
    pci(root, '0000:03:00.0', { group: 7 });
    pci(root, '0000:05:00.0', { driver: 'i915', group: 10 });
    pci(root, '0000:09:00.0', {});
    mdev(root, UUID1, '0000:05:00.0', 100);
    mdev(root, UUID2, '0000:05:00.0', 100);
    write(root, 'kernel/iommu_groups/1/reserved_regions',
      '0x0000000080000000 0x00000000800fffff reserved\n0x00000000fee00000 0x00000000feefffff msi\n');

    const { topology, groupMembers } = fromDocument(readSysfsTopology(root));

    expect(topologyProblems(topology, groupMembers)).toEqual([]);
    expect(topology.devices).toHaveLength(9);
    expect(topology.devices.find((d) => d.id === '0000:09:00.0')?.groupId).toBeNull();
    expect(topology.groups.map((g) => g.id)).toEqual([1, 2, 3, 7, 10, 100]);
  });

  it('refuses a missing root, or one without bus/pci/devices, with ENOENT', () => {
    const missing = path.join(os.tmpdir(), 'ioasd-sysfs-does-not-exist-' + process.pid);
    expect(() => readSysfsTopology(missing)).toThrow(IoasdError);
    expect(() => readSysfsTopology(missing)).toThrow(expect.objectContaining({ errno: 'ENOENT' }));

    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ioasd-sysfs-'));
    roots.push(empty);
    expect(() => readSysfsTopology(empty)).toThrow(expect.objectContaining({ errno: 'ENOENT' }));
  });
});
