import type { Device, DeviceKind, GroupKind } from './model.js';

/**
 * Drivers under which a PCI function does no DMA on the kernel's behalf (SPEC 3): the kernel's
 * vfio_driver_allowed() set plus "no driver" and pcieport (a bridge does no DMA of its own).
 */
const USER_SAFE_DRIVERS: ReadonlySet<string> = new Set(['vfio-pci', 'pci-stub', 'pcieport', 'none']);

export function isVirtualKind(kind: DeviceKind): boolean {
  return kind === 'mdev' || kind === 'vdpa';
}

/** The group kind a device of this kind lives in: virtual devices have no hardware group. */
export function groupKindFor(kind: DeviceKind): GroupKind {
  return isVirtualKind(kind) ? 'virtual' : 'iommu';
}

/**
 * A pci/vf device bound to a DMA-capable kernel driver. Virtual devices never are: their DMA is
 * mediated by the parent, which keeps its kernel driver.
 */
export function isKernelDma(device: Pick<Device, 'kind' | 'driver'>): boolean {
  return !isVirtualKind(device.kind) && !USER_SAFE_DRIVERS.has(device.driver);
}
