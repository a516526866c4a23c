/**
 * A short human description of a PCI function from its class code (PCI Code and ID Assignment
 * specification; the names lspci prints), so an operator reading "driver-changed" effects or
 * warnings sees "Non-Volatile memory controller" rather than 0x010802. Vendor names are not
 * embedded (that is pci.ids' job); the ids are given as lspci shows them.
 */
const CLASSES: Record<string, string> = {
  '0100': 'SCSI storage controller',
  '0101': 'IDE interface',
  '0104': 'RAID bus controller',
  '0106': 'SATA controller',
  '0107': 'Serial Attached SCSI controller',
  '0108': 'Non-Volatile memory controller',
  '0180': 'Mass storage controller',
  '0200': 'Ethernet controller',
  '0207': 'Infiniband controller',
  '0280': 'Network controller',
  '0300': 'VGA compatible controller',
  '0302': '3D controller',
  '0380': 'Display controller',
  '0401': 'Multimedia audio controller',
  '0403': 'Audio device',
  '0480': 'Multimedia controller',
  '0500': 'RAM memory',
  '0580': 'Memory controller',
  '0600': 'Host bridge',
  '0601': 'ISA bridge',
  '0604': 'PCI bridge',
  '0680': 'Bridge',
  '0700': 'Serial controller',
  '0780': 'Communication controller',
  '0806': 'IOMMU',
  '0880': 'System peripheral',
  '0b40': 'Co-processor',
  '0c03': 'USB controller',
  '0c05': 'SMBus',
  '0c80': 'Serial bus controller',
  '1080': 'Encryption controller',
  '1180': 'Signal processing controller',
  '1200': 'Processing accelerators',
  '1300': 'Non-Essential Instrumentation',
};

export function pciDescription(klass: string | null, vendor: string | null, device: string | null, subVendor: string | null, subDevice: string | null): string | null {
  if (klass === null && vendor === null) return null;
  const code = klass === null ? null : klass.replace(/^0x/, '').padStart(6, '0').slice(0, 4);
  const name = code === null ? 'PCI device' : (CLASSES[code] ?? `PCI class ${code}`);
  const id = (v: string | null) => (v === null ? '????' : v.replace(/^0x/, '').padStart(4, '0'));
  const sub = subVendor !== null && subDevice !== null ? ` (subsystem ${id(subVendor)}:${id(subDevice)})` : '';
  return `${name} [${id(vendor)}:${id(device)}]${sub}`;
}
