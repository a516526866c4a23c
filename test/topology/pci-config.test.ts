import { describe, expect, it } from 'vitest';
import { parsePciConfig } from '../../src/topology/pci-config.js';
import { ACS, encodeConfig, type FunctionSpec } from '../fixtures/sysfs/build.js';

const port: FunctionSpec = {
  addr: '0000:00:1c.0', vendor: 0x8086, device: 0xa290, class: 0x060400, bridge: true, multifunction: true, pcie: 'downstream',
  acs: { cap: ACS.SV | ACS.RR | ACS.CR | ACS.UF, ctrl: ACS.SV | ACS.RR },
};

describe('parsePciConfig', () => {
  it('finds the port type, the multi-function bit, ACS and PASID in a whole configuration space', () => {
    expect(parsePciConfig(encodeConfig({ ...port, pasid: true }))).toEqual({
      length: 4096, multifunction: true, pcie: { portType: 0x6 }, acs: { cap: 0x1d, ctrl: 0x05 }, pasid: true,
    });
    expect(parsePciConfig(encodeConfig({ ...port, acs: undefined, multifunction: false }))).toMatchObject({ multifunction: false, acs: null, pasid: false });
  });

  it('reads conventional PCI as not PCI Express, without extended capabilities', () => {
    expect(parsePciConfig(encodeConfig({ ...port, pcie: null }))).toEqual({ length: 256, multifunction: true, pcie: null, acs: null, pasid: false });
  });

  it('reports what lies past 64 bytes as unknown, keeping the header type', () => {
    expect(parsePciConfig(encodeConfig(port, 'user'))).toEqual({ length: 64, multifunction: true, pcie: 'unknown', acs: 'unknown', pasid: null });
    expect(parsePciConfig(new Uint8Array(0))).toMatchObject({ multifunction: null, pcie: 'unknown' });
  });

  it('stops on a looping or broken capability list', () => {
    const b = encodeConfig(port);
    b[0x41] = 0x40; // power management points to itself
    expect(parsePciConfig(b).pcie).toBeNull();
    const e = encodeConfig(port);
    e.fill(0xff, 0x100, 0x104); // extended header all ones: none
    expect(parsePciConfig(e).acs).toBeNull();
  });
});
