import type { PciFunction } from '../core/isolation.js';

/**
 * What ioasd needs from a function's PCI configuration space (the sysfs `config` file): the header
 * type's multi-function bit, the PCI Express capability's port type, and the ACS (0x000d) and PASID
 * (0x001b) extended capabilities. Without root the kernel returns only the first 64 bytes
 * (pci_read_config() in drivers/pci/pci-sysfs.c): what lies beyond is 'unknown', never a failure.
 */
export interface PciConfig {
  /** Bytes read: 64 without root, 256 for conventional PCI, 4096 for PCI Express. */
  length: number;
  multifunction: boolean | null;
  pcie: PciFunction['pcie'];
  acs: PciFunction['acs'];
  /** A PASID capability is present; null when it could not be read. */
  pasid: boolean | null;
}

export const PCI_CAP_ID_EXP = 0x10;
export const PCI_EXT_CAP_ID_ACS = 0x000d;
export const PCI_EXT_CAP_ID_PASID = 0x001b;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CFG_SPACE_SIZE = 256;

export function parsePciConfig(bytes: Uint8Array): PciConfig {
  const length = bytes.length;
  const u8 = (o: number) => bytes[o]!;
  const u16 = (o: number) => u8(o) | (u8(o + 1) << 8);
  const u32 = (o: number) => (u16(o) | (u16(o + 2) << 16)) >>> 0;
  const unknown: PciConfig = { length, multifunction: null, pcie: 'unknown', acs: 'unknown', pasid: null };
  if (length < 64) return unknown;

  const headerType = u8(0x0e);
  const multifunction = (headerType & 0x80) !== 0;
  // Conventional PCI without a capability list cannot be PCI Express (which needs its capability).
  if ((u16(0x06) & PCI_STATUS_CAP_LIST) === 0) return { length, multifunction, pcie: null, acs: null, pasid: false };

  // The standard capability list (cardbus bridges keep their pointer at 0x14).
  let pcie: PciConfig['pcie'] = null;
  let pos = u8((headerType & 0x7f) === 2 ? 0x14 : 0x34) & 0xfc;
  for (let hops = 0; pos !== 0 && hops < 48; hops++) {
    if (pos + 4 > length) {
      pcie = 'unknown'; // the list goes on where we cannot read
      break;
    }
    if (u8(pos) === PCI_CAP_ID_EXP) {
      pcie = { portType: (u16(pos + 2) >> 4) & 0xf };
      break;
    }
    pos = u8(pos + 1) & 0xfc;
  }
  if (pcie === 'unknown') return { length, multifunction, pcie, acs: 'unknown', pasid: null };
  // Extended capabilities exist only past the first 256 bytes of a PCI Express function; a read of
  // exactly 256 bytes means the kernel sees no extended space either (cfg_size 256).
  if (pcie === null || length === PCI_CFG_SPACE_SIZE) return { length, multifunction, pcie, acs: null, pasid: false };
  if (length < PCI_CFG_SPACE_SIZE) return { length, multifunction, pcie, acs: 'unknown', pasid: null };

  let acs: PciConfig['acs'] = null;
  let pasid = false;
  pos = PCI_CFG_SPACE_SIZE;
  // pci_find_next_ext_capability(): at most (4096 - 256) / 8 hops.
  for (let hops = 0; pos >= PCI_CFG_SPACE_SIZE && pos + 8 <= length && hops < 480; hops++) {
    const header = u32(pos);
    if (header === 0 || header === 0xffffffff) break;
    const id = header & 0xffff;
    if (id === PCI_EXT_CAP_ID_ACS && acs === null) acs = { cap: u16(pos + 4), ctrl: u16(pos + 6) };
    if (id === PCI_EXT_CAP_ID_PASID) pasid = true;
    pos = (header >>> 20) & 0xffc;
  }
  return { length, multifunction, pcie, acs, pasid };
}
