import { describe, expect, it } from 'vitest';
import {
  acsVerdict,
  assignableGroup,
  isolationWarnings,
  parseAcsOverride,
  PCI_ACS_CR,
  PCI_ACS_EC,
  PCI_ACS_RR,
  PCI_ACS_SV,
  PCI_ACS_UF,
  PCI_EXP_TYPE,
  summarizeWarnings,
  type PciFunction,
} from '../../src/core/isolation.js';
import { IoasdError } from '../../src/core/errors.js';
import type { Device } from '../../src/core/model.js';

const ALL = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

function fn(id: string, o: Partial<PciFunction> = {}): PciFunction {
  return { id, upstream: null, groupId: 1, vendor: 0x8086, device: 0x1234, multifunction: false, pcie: { portType: PCI_EXP_TYPE.ENDPOINT }, acs: null, ...o };
}

describe('acsVerdict mirrors pci_acs_enabled(pdev, REQ_ACS_FLAGS)', () => {
  const port = (acs: PciFunction['acs'], type: number = PCI_EXP_TYPE.ROOT_PORT) => fn('0000:00:01.0', { pcie: { portType: type }, acs });

  it('requires enabled ACS on root and downstream ports', () => {
    expect(acsVerdict(port(null), null).isolates).toBe(false);
    expect(acsVerdict(port({ cap: ALL, ctrl: ALL }), null).isolates).toBe(true);
    expect(acsVerdict(port({ cap: ALL, ctrl: ALL & ~PCI_ACS_RR }, PCI_EXP_TYPE.DOWNSTREAM), null)).toMatchObject({ isolates: false, why: 'its ACS does not enable request redirect' });
  });

  it('counts bits the capability lacks as hard-wired on, egress control aside (pci_acs_flags_enabled)', () => {
    // No upstream forwarding in the capability: not required, so SV/RR/CR enabled is enough.
    expect(acsVerdict(port({ cap: ALL & ~PCI_ACS_UF, ctrl: PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR }), null).isolates).toBe(true);
    // Egress control is never assumed: asked for, it must be enabled even when the capability lacks it.
    expect(acsVerdict(port({ cap: ALL, ctrl: ALL }), null, ALL | PCI_ACS_EC).isolates).toBe(false);
  });

  it('asks nothing of single-function endpoints and upstream ports, everything of multi-function ones', () => {
    expect(acsVerdict(fn('a'), null).isolates).toBe(true);
    expect(acsVerdict(fn('a', { pcie: { portType: PCI_EXP_TYPE.UPSTREAM } }), null).isolates).toBe(true);
    expect(acsVerdict(fn('a', { multifunction: true }), null).isolates).toBe(false);
    expect(acsVerdict(fn('a', { multifunction: true, acs: { cap: ALL, ctrl: ALL } }), null).isolates).toBe(true);
  });

  it('never lets conventional PCI or PCIe-to-PCI bridges isolate', () => {
    expect(acsVerdict(fn('a', { pcie: null }), null).isolates).toBe(false);
    expect(acsVerdict(fn('a', { pcie: { portType: PCI_EXP_TYPE.PCI_BRIDGE }, acs: { cap: ALL, ctrl: ALL } }), null).isolates).toBe(false);
  });

  it('answers unknown when configuration space could not be read', () => {
    expect(acsVerdict(fn('a', { pcie: 'unknown', acs: 'unknown' }), null).isolates).toBeNull();
    expect(acsVerdict(port('unknown'), null).isolates).toBeNull();
  });

  it('applies pcie_acs_override only to PCIe functions without an ACS capability, by type or id', () => {
    const o = parseAcsOverride('quiet pcie_acs_override=downstream')!;
    expect(acsVerdict(port(null), o)).toMatchObject({ isolates: true, byOverride: true });
    expect(acsVerdict(port({ cap: ALL, ctrl: 0 }), o)).toMatchObject({ isolates: false, byOverride: false });
    expect(acsVerdict(fn('a', { multifunction: true }), o).isolates).toBe(false);
    const mf = parseAcsOverride('pcie_acs_override=multifunction,id:8086:1234')!;
    expect(acsVerdict(fn('a', { multifunction: true, device: 0x9999 }), mf).byOverride).toBe(true);
    expect(acsVerdict(port(null), mf).byOverride).toBe(true); // by id
    expect(acsVerdict(fn('a', { pcie: null, multifunction: true }), mf).isolates).toBe(false);
  });

  it('parses the override option', () => {
    expect(parseAcsOverride('root=/dev/sda1 ro')).toBeNull();
    expect(parseAcsOverride('pcie_acs_override=downstream,multifunction,id:10de:1b80')).toEqual({
      text: 'downstream,multifunction,id:10de:1b80',
      downstream: true,
      multifunction: true,
      ids: [{ vendor: 0x10de, device: 0x1b80 }],
    });
  });
});

describe('isolationWarnings', () => {
  const rootPort = (acs: PciFunction['acs'], groupId: number) => fn('0000:00:1c.0', { pcie: { portType: PCI_EXP_TYPE.ROOT_PORT }, acs, groupId });
  const below = (groupId: number) => fn('0000:03:00.0', { upstream: '0000:00:1c.0', groupId });

  it('warns no-acs when the kernel grouped a device with the port lacking ACS above it', () => {
    const w = isolationWarnings([rootPort(null, 5), below(5)], null);
    expect(w.get(5)?.map((x) => [x.code, x.deviceId])).toEqual([['no-acs', '0000:00:1c.0']]);
  });

  it('trusts the kernel when it kept them apart anyway (a device quirk): no warning', () => {
    expect(isolationWarnings([rootPort(null, 5), below(6)], null).size).toBe(0);
  });

  it('walks the whole path: a port higher up without ACS counts too', () => {
    const fns = [
      fn('0000:00:01.0', { pcie: { portType: PCI_EXP_TYPE.ROOT_PORT }, acs: null, groupId: 2 }),
      fn('0000:01:00.0', { upstream: '0000:00:01.0', pcie: { portType: PCI_EXP_TYPE.UPSTREAM }, groupId: 2 }),
      fn('0000:02:00.0', { upstream: '0000:01:00.0', pcie: { portType: PCI_EXP_TYPE.DOWNSTREAM }, acs: { cap: ALL, ctrl: ALL }, groupId: 2 }),
      fn('0000:03:00.0', { upstream: '0000:02:00.0', groupId: 2 }),
    ];
    expect(isolationWarnings(fns, null).get(2)?.map((x) => x.deviceId)).toEqual(['0000:00:01.0']);
  });

  it('infers no-acs from the grouping when configuration space is unreadable', () => {
    const w = isolationWarnings([rootPort('unknown', 5), fn('0000:03:00.0', { upstream: '0000:00:1c.0', groupId: 5, pcie: 'unknown', acs: 'unknown' })], null);
    expect(w.get(5)?.[0]).toMatchObject({ code: 'no-acs', deviceId: '0000:00:1c.0' });
    expect(w.get(5)?.[0]?.detail).toContain('the kernel grouped 0000:03:00.0 with the bridge 0000:00:1c.0');
  });

  it('warns acs-override where the override split what the hardware does not', () => {
    const o = parseAcsOverride('pcie_acs_override=downstream')!;
    const w = isolationWarnings([rootPort(null, 5), below(6)], o);
    expect(w.get(6)?.map((x) => [x.code, x.deviceId])).toEqual([['acs-override', '0000:00:1c.0']]);
  });

  it('warns multifunction-no-acs once per device, naming the functions grouped together', () => {
    const fns = ['0', '1', '2'].map((f) => fn(`0000:05:00.${f}`, { multifunction: true, groupId: 7 }));
    const w = isolationWarnings(fns, null).get(7)!;
    expect(w.map((x) => [x.code, x.deviceId])).toEqual([['multifunction-no-acs', '0000:05:00.0']]);
    expect(w[0]!.detail).toContain('functions 0000:05:00.0, 0000:05:00.1, 0000:05:00.2');
  });
});

describe('devices without an IOMMU group', () => {
  const d: Device = {
    id: '0000:00:00.2', kind: 'pci', groupId: null, parentId: null, driver: 'none', label: null, pasidCapable: false,
    resetGroup: null, vendor: null, device: null, class: null, description: null, reservedRegions: [],
  };

  it('are refused ENODEV with a no-iommu blocker', () => {
    expect(() => assignableGroup(d)).toThrow(IoasdError);
    try {
      assignableGroup(d);
    } catch (e) {
      expect((e as IoasdError).errno).toBe('ENODEV');
      expect((e as IoasdError).blockers).toEqual([{ kind: 'device', id: '0000:00:00.2', reason: 'no-iommu: not behind an IOMMU (no IOMMU group)' }]);
    }
    expect(assignableGroup({ ...d, groupId: 4 })).toBe(4);
  });

  it('count as no-iommu in the summary', () => {
    const s = summarizeWarnings([{ id: 1, kind: 'iommu', warnings: [{ code: 'no-acs', deviceId: 'x', detail: 'd' }] }, { id: 2, kind: 'iommu' }], [d], [{ code: 'c', detail: 'd' }]);
    expect(s).toEqual({
      groups: [1],
      byCode: { 'no-acs': 1, 'multifunction-no-acs': 0, 'acs-override': 0, 'identity-domain': 0, 'no-iommu': 1 },
      devicesWithoutGroup: ['0000:00:00.2'],
      host: [{ code: 'c', detail: 'd' }],
    });
  });
});
