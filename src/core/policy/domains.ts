import type { UndoLog } from '../tx.js';
import { fail, IoasdError, type Errno } from '../errors.js';
import type { IovaSpace } from '../iova-space.js';
import { PAGE_SIZE } from '../map-rules.js';
import type { Device, Domain, Iommu } from '../model.js';
import { U64_MAX } from '../u64.js';

/** The smallest page size the iommu supports: a domain's IOVA granule. */
export function minPageSize(iommu: Iommu): bigint {
  return iommu.pageSizes.reduce((a, b) => (b < a ? b : a));
}

/** An IOMMU domain: the iommu's aperture and reserved regions, plus those of the devices using it. */
export function iommuDomain(key: string, iommu: Iommu, devices: readonly Device[]): Domain {
  return {
    key,
    minPageSize: minPageSize(iommu),
    aperture: iommu.aperture,
    reserved: [...iommu.reservedRegions, ...devices.flatMap((d) => d.reservedRegions)],
  };
}

/**
 * What a virtual device's parent needs to reach an IOAS on its behalf (iommufd's emulated access):
 * page-granular pinning, no aperture and no reserved regions of its own.
 */
export function accessDomain(key: string): Domain {
  return { key, minPageSize: PAGE_SIZE, aperture: { start: 0n, last: U64_MAX }, reserved: [] };
}

/**
 * Sets a domain on an address space with undo; a conflict (EADDRINUSE from the space) is answered
 * with `errno` (group-first says EINVAL where device-first says EADDRINUSE).
 */
export function putDomain(space: IovaSpace, domain: Domain, undo: UndoLog, errno: Errno = 'EADDRINUSE'): void {
  let previous: Domain | undefined;
  try {
    previous = space.setDomain(domain);
  } catch (err) {
    if (err instanceof IoasdError && err.errno === 'EADDRINUSE' && errno !== 'EADDRINUSE') fail(errno, err.message);
    throw err;
  }
  undo.push(() => (previous ? space.restoreDomain(previous) : space.removeDomain(domain.key)));
}

export function dropDomain(space: IovaSpace, key: string, undo: UndoLog): void {
  const previous = space.removeDomain(key);
  if (previous) undo.push(() => space.restoreDomain(previous));
}
