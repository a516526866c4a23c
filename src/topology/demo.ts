import type { TopologyDocument } from '../schemas/topology.js';
import { TopologyInput } from '../schemas/topology.js';

/**
 * The embedded default (SPEC 9): a workstation-like host on which every ownership rule shows.
 * Groups 1-11 are hardware groups; 100 and 101 are the virtual groups of two mdevs.
 */
const DEMO = {
  iommu: {
    pageSizes: ['0x1000', '0x200000', '0x40000000'],
    aperture: { start: '0x0', last: '0xffffffffffff' },
    reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }],
    pasidBits: 20,
    features: { nesting: true, pasid: true, dirtyTracking: true },
  },
  groups: [
    { id: 1, kind: 'iommu' }, // GPU + its HDMI audio function: one group, as on real hardware
    { id: 2, kind: 'iommu' }, // NIC physical function, kept by its kernel driver
    { id: 3, kind: 'iommu' }, // SR-IOV VFs: each in a group of its own (ACS isolates them)
    { id: 4, kind: 'iommu' },
    { id: 5, kind: 'iommu' },
    { id: 6, kind: 'iommu' },
    { id: 7, kind: 'iommu' }, // NVMe disk on nvme
    { id: 8, kind: 'iommu' }, // chipset: USB and SATA share a group, both on kernel drivers
    { id: 9, kind: 'iommu' }, // multi-function card whose functions carry different labels
    { id: 10, kind: 'iommu' }, // GPU that parents the mdevs, on its kernel driver
    { id: 11, kind: 'iommu' }, // PASID-capable accelerator
    { id: 100, kind: 'virtual' },
    { id: 101, kind: 'virtual' },
  ],
  devices: [
    { id: '0000:01:00.0', kind: 'pci', groupId: 1, driver: 'vfio-pci', label: 'tenant-a', resetGroup: 'slot-01',
      vendor: '0x10de', device: '0x2684', class: '0x030000', description: 'GPU' },
    { id: '0000:01:00.1', kind: 'pci', groupId: 1, driver: 'snd_hda_intel', label: 'tenant-a', resetGroup: 'slot-01',
      vendor: '0x10de', device: '0x22ba', class: '0x040300', description: 'GPU HDMI audio' },
    { id: '0000:02:00.0', kind: 'pci', groupId: 2, driver: 'ice', label: null,
      vendor: '0x8086', device: '0x1592', class: '0x020000', description: 'Ethernet controller (SR-IOV PF)' },
    { id: '0000:02:01.0', kind: 'vf', groupId: 3, parentId: '0000:02:00.0', driver: 'vfio-pci', label: 'tenant-a',
      vendor: '0x8086', device: '0x1889', class: '0x020000', description: 'Ethernet adaptive VF 0' },
    { id: '0000:02:01.1', kind: 'vf', groupId: 4, parentId: '0000:02:00.0', driver: 'vfio-pci', label: 'tenant-b',
      vendor: '0x8086', device: '0x1889', class: '0x020000', description: 'Ethernet adaptive VF 1' },
    { id: '0000:02:01.2', kind: 'vf', groupId: 5, parentId: '0000:02:00.0', driver: 'vfio-pci', label: 'shared',
      vendor: '0x8086', device: '0x1889', class: '0x020000', description: 'Ethernet adaptive VF 2' },
    { id: '0000:02:01.3', kind: 'vf', groupId: 6, parentId: '0000:02:00.0', driver: 'iavf', label: null,
      vendor: '0x8086', device: '0x1889', class: '0x020000', description: 'Ethernet adaptive VF 3 (host networking)' },
    { id: '0000:03:00.0', kind: 'pci', groupId: 7, driver: 'nvme', label: null,
      vendor: '0x144d', device: '0xa80a', class: '0x010802', description: 'NVMe SSD (host root disk)' },
    { id: '0000:00:14.0', kind: 'pci', groupId: 8, driver: 'xhci_hcd', label: null,
      vendor: '0x8086', device: '0x7ae0', class: '0x0c0330', description: 'USB 3.2 xHCI controller',
      reservedRegions: [{ start: '0x7a000000', last: '0x7a0fffff', type: 'direct' }] },
    { id: '0000:00:17.0', kind: 'pci', groupId: 8, driver: 'ahci', label: null,
      vendor: '0x8086', device: '0x7ae2', class: '0x010601', description: 'SATA AHCI controller' },
    { id: '0000:04:00.0', kind: 'pci', groupId: 9, driver: 'vfio-pci', label: 'tenant-a', resetGroup: 'slot-04',
      vendor: '0x1d0f', device: '0xefa0', class: '0x020000', description: 'dual-function card, port A' },
    { id: '0000:04:00.1', kind: 'pci', groupId: 9, driver: 'vfio-pci', label: 'tenant-b', resetGroup: 'slot-04',
      vendor: '0x1d0f', device: '0xefa0', class: '0x020000', description: 'dual-function card, port B' },
    { id: '0000:05:00.0', kind: 'pci', groupId: 10, driver: 'i915', label: null,
      vendor: '0x8086', device: '0x56a0', class: '0x030000', description: 'GPU that parents mediated devices' },
    { id: 'c0ffee00-0000-4000-8000-000000000001', kind: 'mdev', groupId: 100, parentId: '0000:05:00.0',
      driver: 'vfio_mdev', label: 'tenant-a', description: 'mediated vGPU instance 1' },
    { id: 'c0ffee00-0000-4000-8000-000000000002', kind: 'mdev', groupId: 101, parentId: '0000:05:00.0',
      driver: 'vfio_mdev', label: 'tenant-b', description: 'mediated vGPU instance 2' },
    { id: '0000:06:00.0', kind: 'pci', groupId: 11, driver: 'vfio-pci', label: 'shared', pasidCapable: true,
      vendor: '0x8086', device: '0x0b25', class: '0x088000', description: 'data streaming accelerator (PASID)' },
  ],
};

/** The demo topology, parsed through the same schema as any imported document. */
export function demoTopology(): TopologyDocument {
  return TopologyInput.parse(DEMO);
}
