import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKernelDma } from '../../src/core/devices.js';
import { groupView } from '../../src/core/groups.js';
import type { Device, Topology } from '../../src/core/model.js';
import { mergeTopology, topologyProblems } from '../../src/core/topology.js';
import { fromDocument } from '../../src/schemas/topology.js';
import { demoTopology } from '../../src/topology/demo.js';

function demo(): Topology {
  return fromDocument(demoTopology()).topology;
}

function device(over: Partial<Device> & Pick<Device, 'id' | 'groupId'>): Device {
  return {
    kind: 'pci',
    parentId: null,
    driver: 'vfio-pci',
    label: null,
    pasidCapable: false,
    resetGroup: null,
    vendor: null,
    device: null,
    class: null,
    description: null,
    reservedRegions: [],
    ...over,
  };
}

describe('topology validation', () => {
  it('accepts the demo topology', () => {
    expect(topologyProblems(demo())).toEqual([]);
  });

  it('lists every problem of a bad document, not only the first', () => {
    const t = demo();
    t.devices.push(device({ id: '0000:01:00.0', groupId: 1 })); // named twice
    t.devices.push(device({ id: '0000:09:00.0', groupId: 999 })); // missing group
    t.devices.push(device({ id: '0000:0a:00.0', kind: 'vf', groupId: 3, parentId: '0000:ff:00.0' })); // missing parent
    t.groups.push({ id: 50, kind: 'iommu' }); // empty group
    const problems = topologyProblems(t).map((p) => p.message);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('0000:01:00.0 is named twice'),
        expect.stringContaining('names missing group 999'),
        expect.stringContaining('names missing parent 0000:ff:00.0'),
        expect.stringContaining('group 50 has no device'),
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('refuses a device put into two groups by the group lists', () => {
    const t = demo();
    const problems = topologyProblems(t, new Map([[1, ['0000:01:00.0']], [2, ['0000:01:00.0']]]));
    expect(problems.map((p) => p.message)).toEqual([expect.stringContaining('0000:01:00.0 is put in two groups')]);
  });

  it('keeps virtual devices in virtual groups and hardware in iommu groups', () => {
    const t = demo();
    t.devices.push(device({ id: 'mdev-x', kind: 'mdev', groupId: 1, parentId: '0000:05:00.0' }));
    t.devices.push(device({ id: '0000:0b:00.0', groupId: 100 }));
    const messages = topologyProblems(t).map((p) => p.message);
    expect(messages).toContain('mdev device mdev-x cannot be in iommu group 1');
    expect(messages).toContain('pci device 0000:0b:00.0 cannot be in virtual group 100');
  });

  it('checks parents: VFs need a pci PF, pci functions have none, virtual devices do not parent', () => {
    const t = demo();
    t.groups.push({ id: 60, kind: 'iommu' }, { id: 61, kind: 'iommu' }, { id: 160, kind: 'virtual' });
    t.devices.push(device({ id: '0000:0c:00.0', kind: 'vf', groupId: 60, parentId: '0000:02:01.0' })); // VF of a VF
    t.devices.push(device({ id: '0000:0d:00.0', groupId: 61, parentId: '0000:02:00.0' })); // pci with parent
    t.devices.push(device({ id: 'nested', kind: 'mdev', groupId: 160, parentId: 'c0ffee00-0000-4000-8000-000000000001' }));
    const messages = topologyProblems(t).map((p) => p.message);
    expect(messages).toEqual([
      'VF 0000:0c:00.0 needs a pci physical function as parent',
      'pci device 0000:0d:00.0 cannot have a parent',
      'parent c0ffee00-0000-4000-8000-000000000001 of nested is itself a virtual device',
    ]);
  });

  it('checks iommu capabilities and ranges', () => {
    const t = demo();
    t.iommu = { ...t.iommu, pageSizes: [0x1000n, 0x3000n], aperture: { start: 10n, last: 5n } };
    expect(topologyProblems(t).map((p) => p.path)).toEqual(['iommu.pageSizes[1]', 'iommu.aperture']);
  });

  it('merges by id and still sees duplicates within the incoming document', () => {
    const t = demo();
    const gpu = t.devices.find((d) => d.id === '0000:01:00.0')!;
    const merged = mergeTopology(t, { groups: [], devices: [{ ...gpu, driver: 'nouveau' }] });
    expect(merged.devices.filter((d) => d.id === gpu.id).map((d) => d.driver)).toEqual(['nouveau']);
    expect(merged.devices).toHaveLength(t.devices.length);
    const dup = mergeTopology(t, { groups: [], devices: [gpu, gpu] });
    expect(topologyProblems(dup).map((p) => p.message)).toEqual([`device ${gpu.id} is named twice`]);
  });
});

describe('group viability', () => {
  const drivers = ['vfio-pci', 'pci-stub', 'pcieport', 'none', 'nvme', 'snd_hda_intel', 'xhci_hcd'];

  it('demo GPU+audio group is viable only when both functions are on vfio-pci or none', () => {
    const [gpu, audio] = demo().devices.filter((d) => d.groupId === 1);
    for (const a of drivers) {
      for (const b of drivers) {
        const safe = (x: string) => ['vfio-pci', 'pci-stub', 'pcieport', 'none'].includes(x);
        const view = groupView({ id: 1, kind: 'iommu' }, [{ ...gpu!, driver: a }, { ...audio!, driver: b }]);
        expect(view.viable).toBe(safe(a) && safe(b));
      }
    }
  });

  it('is viable exactly when no member is kernel-DMA, and names each blocker', () => {
    const member = fc.record({
      kind: fc.constantFrom('pci', 'vf', 'mdev', 'vdpa') as fc.Arbitrary<Device['kind']>,
      driver: fc.constantFrom(...drivers),
    });
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 6 }), (members) => {
        const devices = members.map((m, i) => device({ id: `d${i}`, groupId: 1, ...m }));
        const view = groupView({ id: 1, kind: 'iommu' }, devices);
        const kernel = devices.filter(isKernelDma).map((d) => d.id);
        expect(view.viable).toBe(kernel.length === 0);
        expect(view.blockers.map((b) => b.id)).toEqual(kernel);
        // Virtual devices never block: the parent mediates their DMA.
        expect(view.blockers.every((b) => !['mdev', 'vdpa'].includes(devices.find((d) => d.id === b.id)!.kind))).toBe(true);
      }),
    );
  });
});
