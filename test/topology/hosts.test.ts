import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoasdError } from '../../src/core/errors.js';
import { topologyProblems } from '../../src/core/topology.js';
import { fromDocument, type TopologyDocument } from '../../src/schemas/topology.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { desktop, sriov } from '../fixtures/sysfs/hosts.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';

// Each generated fixture host read as ioasd reads /sys: groups, devices, drivers, capabilities,
// reserved regions and warnings.

const trees = fixtureTrees();
afterAll(() => trees.remove());

function read(name: string, access: 'root' | 'user' = 'root'): TopologyDocument {
  const { sys, proc } = trees.host(name, { configAccess: access });
  const doc = readSysfsTopology(sys, { proc });
  // Whatever the host, the result is a valid inventory.
  const { topology, groupMembers } = fromDocument(doc);
  expect(topologyProblems(topology, groupMembers)).toEqual([]);
  return doc;
}

const K = 1n << 10n;
const MSI = { start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' };
const bits = (n: number) => (1n << BigInt(n)) - 1n;

/** group id -> its warnings as "code@deviceId". */
function warningsOf(doc: TopologyDocument): Record<number, string[]> {
  return Object.fromEntries(doc.groups.map((g) => [g.id, (g.warnings ?? []).map((w) => `${w.code}@${w.deviceId ?? '-'}`)]));
}

function members(doc: TopologyDocument, groupId: number): string[] {
  return doc.devices.filter((d) => d.groupId === groupId).map((d) => d.id);
}

function device(doc: TopologyDocument, id: string) {
  const d = doc.devices.find((x) => x.id === id);
  if (!d) throw new Error(`no device ${id}`);
  return d;
}

describe('desktop: GPU behind a root port without ACS, chipset functions together', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('desktop');
  });

  it('reads every group with the kernel type, and the GPU, its audio and the root port in one', () => {
    expect(doc.groups.map((g) => [g.id, g.kind, g.type])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((id) => [id, 'iommu', 'DMA-FQ']));
    expect(members(doc, 1)).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:01:00.1']);
    expect(members(doc, 7)).toEqual(['0000:00:1f.0', '0000:00:1f.3', '0000:00:1f.4', '0000:00:1f.5', '0000:00:1f.6']);
    expect(members(doc, 6)).toEqual(['0000:02:00.0']);
  });

  it('reads drivers, ids and a description from the class code', () => {
    expect(device(doc, '0000:01:00.0')).toMatchObject({ kind: 'pci', driver: 'vfio-pci', vendor: '0x10de', device: '0x1e84', class: '0x030000', parentId: null });
    expect(device(doc, '0000:01:00.0').description).toBe('VGA compatible controller [10de:1e84] (subsystem 10de:139f)');
    expect(device(doc, '0000:01:00.1').driver).toBe('snd_hda_intel');
    expect(device(doc, '0000:02:00.0')).toMatchObject({ driver: 'nvme', description: 'Non-Volatile memory controller [144d:a808] (subsystem 144d:a801)' });
    expect(device(doc, '0000:00:14.2').driver).toBe('none');
  });

  it('decodes the client VT-d units: 4K/2M/1G, a 39-bit aperture (MGAW), no scalable mode so no PASID, nesting or dirty tracking', () => {
    expect(doc.iommu).toEqual({
      pageSizes: [4n * K, 2n * K * K, K * K * K],
      aperture: { start: 0n, last: bits(39) },
      reservedRegions: [MSI],
      pasidBits: 0,
      features: { nesting: false, pasid: false, dirtyTracking: false },
    });
  });

  it('puts the MSI window on the iommu and RMRRs and the LPC unity map on the devices of their group', () => {
    expect(device(doc, '0000:00:02.0').reservedRegions).toEqual([{ start: 0x7b800000n, last: 0x7fffffffn, type: 'direct' }]);
    for (const id of members(doc, 7)) expect(device(doc, id).reservedRegions).toEqual([{ start: 0n, last: 0xffffffn, type: 'direct-relaxable' }]);
    expect(device(doc, '0000:01:00.0').reservedRegions).toEqual([]);
  });

  it('flags the root port without ACS and the multi-function devices without ACS, and nothing else', () => {
    expect(warningsOf(doc)).toEqual({
      0: [],
      1: ['no-acs@0000:00:01.0', 'multifunction-no-acs@0000:01:00.0'],
      2: [],
      3: ['multifunction-no-acs@0000:00:14.0'],
      4: [],
      5: [],
      6: [],
      7: ['multifunction-no-acs@0000:00:1f.0'],
    });
    const [noAcs, mf] = doc.groups[1]!.warnings!;
    expect(noAcs!.detail).toContain('0000:00:01.0 (root port) above 0000:01:00.0 does not isolate (it has no ACS capability)');
    expect(mf!.detail).toContain('functions 0000:01:00.0, 0000:01:00.1');
    expect(doc.warnings).toEqual([]);
  });

  it('without root reads 64 bytes of configuration space: infers the same no-acs groups from the kernel grouping, and says so', () => {
    const user = read('desktop', 'user');
    expect(warningsOf(user)).toEqual(warningsOf(doc));
    expect(user.groups[1]!.warnings![0]!.detail).toContain('the kernel grouped 0000:01:00.0 with the bridge 0000:00:01.0');
    expect(user.warnings?.map((w) => w.code)).toEqual(['config-space-partial']);
    expect(user.warnings![0]!.detail).toContain('15 function(s)');
  });
});

describe('server: a PCIe switch without ACS', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('server-switch');
  });

  it('puts the four NIC functions in one group with the downstream port above them', () => {
    expect(members(doc, 3)).toEqual(['0000:06:01.0', '0000:07:00.0', '0000:07:00.1', '0000:07:00.2', '0000:07:00.3']);
    expect(members(doc, 3).map((id) => device(doc, id).driver)).toEqual(['pcieport', 'tg3', 'vfio-pci', 'vfio-pci', 'vfio-pci']);
  });

  it('flags both downstream ports (the disk can reach the NIC through the switch) and the NIC functions', () => {
    expect(warningsOf(doc)).toEqual({
      0: [],
      1: [],
      2: [],
      3: ['no-acs@0000:06:01.0', 'multifunction-no-acs@0000:07:00.0'],
      4: ['no-acs@0000:06:02.0'],
      5: [],
      6: ['multifunction-no-acs@0000:00:1f.0'],
    });
    expect(doc.groups.find((g) => g.id === 4)!.warnings![0]!.detail).toContain('(switch downstream port)');
    expect(doc.groups.find((g) => g.id === 4)!.warnings![0]!.detail).toContain('the other ports of the same switch included');
  });

  it('decodes the Xeon E5 units: 48-bit aperture, 4K/2M/1G, no scalable-mode features', () => {
    expect(doc.iommu?.aperture.last).toBe(bits(48));
    expect(doc.iommu?.pageSizes).toEqual([4n * K, 2n * K * K, K * K * K]);
    expect(doc.iommu?.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
  });
});

describe('SR-IOV NIC with 8 VFs', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('sriov');
  });

  it('makes each VF a vf of its PF, alone in its group', () => {
    const vfs = doc.devices.filter((d) => d.kind === 'vf');
    expect(vfs.map((d) => [d.id, d.groupId, d.parentId])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [`0000:17:01.${i}`, 20 + i, '0000:17:00.0']));
    for (const vf of vfs) expect(members(doc, vf.groupId!)).toEqual([vf.id]);
    expect(vfs.map((d) => d.driver)).toEqual(['vfio-pci', 'vfio-pci', 'vfio-pci', 'vfio-pci', 'iavf', 'iavf', 'iavf', 'iavf']);
    expect(device(doc, '0000:17:00.0')).toMatchObject({ kind: 'pci', driver: 'ice', groupId: 11 });
    expect(Object.values(warningsOf(doc)).flat()).toEqual([]);
  });

  it('decodes Sapphire Rapids: 57-bit aperture, nesting and dirty tracking from scalable mode, no PASID (ECAP bit 40 clear)', () => {
    expect(doc.iommu).toMatchObject({
      pageSizes: [4n * K, 2n * K * K, K * K * K],
      aperture: { start: 0n, last: bits(57) },
      pasidBits: 0,
      features: { nesting: true, pasid: false, dirtyTracking: true },
    });
  });

  it('reads PASID capability from the extended configuration space, and cannot without root', () => {
    expect(doc.devices.filter((d) => d.pasidCapable).map((d) => d.id)).toEqual(['0000:6a:01.0']);
    expect(read('sriov', 'user').devices.filter((d) => d.pasidCapable)).toEqual([]);
  });
});

describe('host with mdevs', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('mdevs');
  });

  it('reads the mdevs as virtual groups hanging off their parent, with their type', () => {
    expect(doc.groups.map((g) => [g.id, g.kind, g.type])).toEqual([
      [0, 'iommu', 'DMA-FQ'],
      [1, 'iommu', 'DMA-FQ'],
      [13, 'virtual', null],
      [14, 'virtual', null],
    ]);
    const mdevs = doc.devices.filter((d) => d.kind === 'mdev');
    expect(mdevs.map((d) => [d.groupId, d.parentId, d.driver, d.description])).toEqual([
      [13, '0000:00:02.0', 'vfio_mdev', 'mdev i915-GVTg_V5_4 (GVTg_V5_4)'],
      [14, '0000:00:02.0', 'vfio_mdev', 'mdev i915-GVTg_V5_4 (GVTg_V5_4)'],
    ]);
    expect(mdevs.every((d) => d.reservedRegions.length === 0)).toBe(true);
    expect(device(doc, '0000:00:02.0').reservedRegions).toEqual([{ start: 0x7b800000n, last: 0x7fffffffn, type: 'direct' }]);
    expect(doc.iommu?.reservedRegions).toEqual([MSI]);
  });
});

describe('host booted with pcie_acs_override', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('acs-override');
  });

  it('says which groups exist only because of the override, port by port and function by function', () => {
    expect(warningsOf(doc)).toEqual({
      0: [],
      1: ['acs-override@0000:00:01.0', 'acs-override@0000:01:00.0'],
      2: ['acs-override@0000:00:01.0', 'acs-override@0000:01:00.1'],
      3: ['acs-override@0000:00:1c.0'],
      4: ['acs-override@0000:00:1c.4'],
      5: ['acs-override@0000:00:1c.0'],
      6: ['acs-override@0000:00:1c.4'],
      7: [],
    });
    expect(doc.groups[5]!.warnings![0]!.detail).toContain('pcie_acs_override=downstream,multifunction');
    expect(doc.warnings?.map((w) => w.code)).toEqual(['acs-override']);
  });

  it('without root still warns about every split it cannot rule out', () => {
    const user = read('acs-override', 'user');
    expect(Object.values(warningsOf(user)).flat().every((w) => w.startsWith('acs-override@'))).toBe(true);
    expect(warningsOf(user)[5]).toEqual(['acs-override@0000:00:1c.0']);
    expect(user.warnings?.map((w) => w.code)).toEqual(['acs-override', 'config-space-partial']);
  });
});

describe('AMD host', () => {
  let doc: TopologyDocument;
  beforeAll(() => {
    doc = read('amd');
  });

  it('decodes the EPYC EFR: v1 table (every power of two from 4 KiB to 2^51 but 512 GiB), 6 levels so a 64-bit aperture, 16 PASID bits, dirty tracking', () => {
    const expected: bigint[] = [];
    for (let s = 1n << 12n; s <= 1n << 51n; s <<= 1n) if (s !== 1n << 39n) expected.push(s);
    expect(doc.iommu?.pageSizes).toEqual(expected);
    expect(doc.iommu?.aperture).toEqual({ start: 0n, last: bits(64) });
    expect(doc.iommu?.pasidBits).toBe(16);
    // No nesting: the nest parent needs EFR2 GCR3TRPMODE, and this EFR2 is 0.
    expect(doc.iommu?.features).toEqual({ nesting: false, pasid: true, dirtyTracking: true });
  });

  it('puts the MSI and HyperTransport windows, present in every group, on the iommu', () => {
    expect(doc.iommu?.reservedRegions).toEqual([MSI, { start: 0xfd00000000n, last: 0xffffffffffn, type: 'reserved' }]);
    expect(doc.devices.every((d) => d.reservedRegions.length === 0)).toBe(true);
  });

  it('warns about the identity group and lists the function without a group, groupId null', () => {
    expect(warningsOf(doc)[5]).toEqual(['identity-domain@-']);
    expect(doc.groups.find((g) => g.id === 5)?.type).toBe('identity');
    expect(device(doc, '0000:00:00.2')).toMatchObject({ groupId: null, kind: 'pci', class: '0x080600', description: 'IOMMU [1022:149e]' });
  });
});

describe('host with the IOMMU off', () => {
  it('is refused with ENODEV naming intel_iommu=on / amd_iommu=on, what the command line says, and --topology', () => {
    const { sys, proc } = trees.host('iommu-off');
    let err: unknown;
    try {
      readSysfsTopology(sys, { proc });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IoasdError);
    expect((err as IoasdError).errno).toBe('ENODEV');
    const message = (err as IoasdError).message;
    for (const s of ['intel_iommu=on', 'amd_iommu=on', '--topology', 'the kernel command line has intel_iommu=off']) expect(message).toContain(s);
  });
});

describe('several units', () => {
  it('takes what every unit offers when they differ, and says so', () => {
    // Real values of two machines in one host: a client GFX unit and a Sapphire Rapids unit.
    const spec = { ...desktop, name: 'mixed', units: [desktop.units[1]!, { ...sriov.units[0]!, name: 'dmar2' }] };
    const { sys, proc } = trees.fresh(spec);
    const doc = readSysfsTopology(sys, { proc });
    expect(doc.iommu?.aperture.last).toBe(bits(39));
    expect(doc.iommu?.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
    expect(doc.warnings?.map((w) => w.code)).toEqual(['iommu-units-differ']);
    expect(doc.warnings![0]!.detail).toContain('dmar1, dmar2');
  });
});
