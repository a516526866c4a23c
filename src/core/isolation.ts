import { fail } from './errors.js';
import { ISOLATION_WARNING_CODES, type Device, type GroupRecord, type HostWarning, type IsolationWarning, type IsolationWarningCode } from './model.js';

/**
 * What the hardware isolates on a real host (SPEC 11): the kernel's ACS rules and what they mean
 * for IOMMU groups, and the refusal of a device no IOMMU translates.
 *
 * The kernel builds groups in pci_device_group() (drivers/iommu/iommu.c): a device joins the group
 * of its upstream bridge when the path from that bridge to the root is not ACS-isolated
 * (pci_acs_path_enabled() with REQ_ACS_FLAGS), and a function of a multi-function device without
 * ACS joins a sibling function that lacks it too. pci_acs_enabled() (drivers/pci/pci.c) decides per
 * device; {@link acsVerdict} mirrors it. Two deliberate differences:
 * - the device-specific quirk table (pci_dev_acs_enabled[] in drivers/pci/quirks.c) is not copied:
 *   many entries read chipset registers sysfs does not show. The kernel's groups already carry its
 *   verdict, so a port that lacks ACS by the generic rule but whose devices the kernel still put in
 *   groups of their own is taken as quirked and not reported;
 * - the out-of-tree `pcie_acs_override` patch (Arch, Proxmox and other kernels) is modelled from its
 *   command-line options, so ioasd can say which groups exist only because of it.
 */

/** A device without an IOMMU group: nothing translates its DMA, so it is never assignable. */
export function noIommuWarning(deviceId: string, why = 'it has no IOMMU group'): IsolationWarning {
  return {
    code: 'no-iommu',
    deviceId,
    detail: `${deviceId} is not behind an IOMMU (${why}): its DMA reaches all memory, so it can never be given to a user`,
  };
}

/**
 * The group a device may be assigned through, or ENODEV for a device without one: iommufd refuses
 * to bind it (iommufd_get_group() in drivers/iommu/iommufd/device.c answers -ENODEV), and vfio-pci
 * never even creates a device node for it (vfio_group_find_or_alloc() fails the probe).
 */
export function assignableGroup(device: Device): number {
  if (device.groupId !== null) return device.groupId;
  fail('ENODEV', `device ${device.id} has no IOMMU group: no IOMMU translates its DMA, so it cannot be assigned`, {
    blockers: [{ kind: 'device', id: device.id, reason: 'no-iommu: not behind an IOMMU (no IOMMU group)' }],
  });
}

/**
 * What a device's record shows: the warnings of its group (whoever gets the device gets the whole
 * group), or no-iommu for a device without one.
 */
export function deviceWarnings(device: Device, group: GroupRecord | undefined): IsolationWarning[] {
  if (device.groupId === null) return [noIommuWarning(device.id)];
  return group?.warnings ?? [];
}

/** Group type `identity` (iommu=pt, or a device the IOMMU driver keeps untranslated). */
export function domainTypeWarnings(type: string | null | undefined): IsolationWarning[] {
  if (type !== 'identity') return [];
  return [
    {
      code: 'identity-domain',
      detail: 'the group uses an identity (pass-through) domain: its DMA is not translated while the host drives it, so nothing isolates it from host memory (booted with iommu=pt?)',
    },
  ];
}

// ---- ACS ------------------------------------------------------------------------------------

/** ACS capability/control bits (include/uapi/linux/pci_regs.h). */
export const PCI_ACS_SV = 0x01;
export const PCI_ACS_TB = 0x02;
export const PCI_ACS_RR = 0x04;
export const PCI_ACS_CR = 0x08;
export const PCI_ACS_UF = 0x10;
export const PCI_ACS_EC = 0x20;
export const PCI_ACS_DT = 0x40;
/** What isolation needs (REQ_ACS_FLAGS, drivers/iommu/iommu.c). */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

const ACS_NAMES: [number, string][] = [
  [PCI_ACS_SV, 'source validation'],
  [PCI_ACS_RR, 'request redirect'],
  [PCI_ACS_CR, 'completion redirect'],
  [PCI_ACS_UF, 'upstream forwarding'],
];

/** PCI Express device/port types (PCI_EXP_FLAGS_TYPE, include/uapi/linux/pci_regs.h). */
export const PCI_EXP_TYPE = {
  ENDPOINT: 0x0,
  LEG_END: 0x1,
  ROOT_PORT: 0x4,
  UPSTREAM: 0x5,
  DOWNSTREAM: 0x6,
  PCI_BRIDGE: 0x7,
  PCIE_BRIDGE: 0x8,
  RC_END: 0x9,
  RC_EC: 0xa,
} as const;

const TYPE_NAMES: Record<number, string> = {
  [PCI_EXP_TYPE.ENDPOINT]: 'PCIe endpoint',
  [PCI_EXP_TYPE.LEG_END]: 'legacy PCIe endpoint',
  [PCI_EXP_TYPE.ROOT_PORT]: 'root port',
  [PCI_EXP_TYPE.UPSTREAM]: 'switch upstream port',
  [PCI_EXP_TYPE.DOWNSTREAM]: 'switch downstream port',
  [PCI_EXP_TYPE.PCI_BRIDGE]: 'PCIe-to-PCI bridge',
  [PCI_EXP_TYPE.PCIE_BRIDGE]: 'PCI-to-PCIe bridge',
  [PCI_EXP_TYPE.RC_END]: 'root complex integrated endpoint',
  [PCI_EXP_TYPE.RC_EC]: 'root complex event collector',
};

/**
 * One PCI function as read from a host: where it sits (the bridge whose secondary bus it is on),
 * its group, and what its configuration space says. `'unknown'` marks what could not be read
 * (without root only the first 64 bytes of configuration space are readable).
 */
export interface PciFunction {
  id: string;
  /** The bridge above it (the kernel's bus->self); null on a root bus. */
  upstream: string | null;
  groupId: number | null;
  vendor: number | null;
  device: number | null;
  /** Header type bit 7; a VF is never multi-function. */
  multifunction: boolean;
  /** The PCI Express capability: its port type; null when the function is conventional PCI. */
  pcie: { portType: number } | null | 'unknown';
  /** The ACS extended capability (id 0x000d): its capability and control registers; null when absent. */
  acs: { cap: number; ctrl: number } | null | 'unknown';
}

/** What `pcie_acs_override=` asks for: downstream ports, multi-function devices, vendor:device ids. */
export interface AcsOverride {
  text: string;
  downstream: boolean;
  multifunction: boolean;
  ids: { vendor: number; device: number }[];
}

/** The `pcie_acs_override=` option of a kernel command line, or null when it has none. */
export function parseAcsOverride(cmdline: string): AcsOverride | null {
  const arg = cmdline.split(/\s+/).reverse().find((a) => a.startsWith('pcie_acs_override='));
  if (arg === undefined) return null;
  const text = arg.slice('pcie_acs_override='.length);
  const out: AcsOverride = { text, downstream: false, multifunction: false, ids: [] };
  for (const opt of text.split(',')) {
    if (opt === 'downstream') out.downstream = true;
    else if (opt === 'multifunction') out.multifunction = true;
    else {
      const m = /^id:([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(opt);
      if (m) out.ids.push({ vendor: parseInt(m[1]!, 16), device: parseInt(m[2]!, 16) });
    }
  }
  return out;
}

/** Whether one function isolates by the kernel's rule: true, false, or null when it could not be read. */
export interface AcsVerdict {
  isolates: boolean | null;
  /** True when it isolates only because pcie_acs_override says so. */
  byOverride: boolean;
  why: string;
}

function typeOf(f: PciFunction): number | null {
  return f.pcie !== null && f.pcie !== 'unknown' ? f.pcie.portType : null;
}

export function describeFunction(f: PciFunction): string {
  const type = typeOf(f);
  return type === null ? f.id : `${f.id} (${TYPE_NAMES[type] ?? `PCIe type ${type}`})`;
}

/** pci_acs_flags_enabled(): bits the capability lacks count as hard-wired on, except egress control. */
function flagsVerdict(f: PciFunction, flags: number): AcsVerdict {
  if (f.acs === 'unknown') return { isolates: null, byOverride: false, why: 'its ACS capability could not be read' };
  if (f.acs === null) return { isolates: false, byOverride: false, why: 'it has no ACS capability' };
  const needed = flags & (f.acs.cap | PCI_ACS_EC);
  const missing = needed & ~f.acs.ctrl;
  if (missing === 0) return { isolates: true, byOverride: false, why: 'ACS enabled' };
  const names = ACS_NAMES.filter(([bit]) => (missing & bit) !== 0).map(([, n]) => n);
  return { isolates: false, byOverride: false, why: `its ACS does not enable ${names.join(', ')}` };
}

/**
 * The out-of-tree override patch (pcie_acs_overrides()): it only ever applies to PCIe functions
 * without an ACS capability, by id, or by type when `downstream` / `multifunction` is given.
 */
function overrideCovers(f: PciFunction, o: AcsOverride | null): boolean {
  if (!o || f.acs !== null || f.pcie === null || f.pcie === 'unknown') return false;
  if (o.ids.some((id) => id.vendor === f.vendor && id.device === f.device)) return true;
  switch (f.pcie.portType) {
    case PCI_EXP_TYPE.DOWNSTREAM:
    case PCI_EXP_TYPE.ROOT_PORT:
      return o.downstream;
    case PCI_EXP_TYPE.ENDPOINT:
    case PCI_EXP_TYPE.UPSTREAM:
    case PCI_EXP_TYPE.LEG_END:
    case PCI_EXP_TYPE.RC_END:
      return o.multifunction && f.multifunction;
    default:
      return false;
  }
}

/** pci_acs_enabled(pdev, REQ_ACS_FLAGS), with the override patch consulted first as the kernel does. */
export function acsVerdict(f: PciFunction, override: AcsOverride | null, flags = REQ_ACS_FLAGS): AcsVerdict {
  if (overrideCovers(f, override)) {
    return { isolates: true, byOverride: true, why: `it has no ACS capability; pcie_acs_override=${override!.text} makes the kernel treat it as isolating` };
  }
  if (f.pcie === 'unknown') return { isolates: null, byOverride: false, why: 'its PCI Express capability could not be read' };
  // Conventional PCI and PCI-X never support ACS: a shared bus lets anything snoop anything.
  if (f.pcie === null) return { isolates: false, byOverride: false, why: 'it is conventional PCI, whose shared bus cannot isolate' };
  switch (f.pcie.portType) {
    case PCI_EXP_TYPE.PCIE_BRIDGE:
    case PCI_EXP_TYPE.PCI_BRIDGE:
    case PCI_EXP_TYPE.RC_EC:
      return { isolates: false, byOverride: false, why: 'ACS never applies to it (PCIe 3.0, 6.12.1)' };
    case PCI_EXP_TYPE.DOWNSTREAM:
    case PCI_EXP_TYPE.ROOT_PORT:
      return flagsVerdict(f, flags);
    case PCI_EXP_TYPE.ENDPOINT:
    case PCI_EXP_TYPE.UPSTREAM:
    case PCI_EXP_TYPE.LEG_END:
    case PCI_EXP_TYPE.RC_END:
      if (f.multifunction) return flagsVerdict(f, flags);
      break;
  }
  // Single-function devices other than downstream ports need no ACS (PCIe 3.0, 6.12.1.3).
  return { isolates: true, byOverride: false, why: 'a single function needs no ACS' };
}

/** bus:device of a function: the slot its sibling functions share. */
function slotOf(id: string): string {
  return id.slice(0, id.lastIndexOf('.'));
}

/**
 * The isolation warnings of every group, from the functions of a host and the kernel's command-line
 * override (if any). Only functions with a group get warnings here; see {@link noIommuWarning}.
 */
export function isolationWarnings(functions: readonly PciFunction[], override: AcsOverride | null): Map<number, IsolationWarning[]> {
  const byId = new Map(functions.map((f) => [f.id, f]));
  const verdicts = new Map<string, AcsVerdict>();
  const verdict = (f: PciFunction): AcsVerdict => {
    let v = verdicts.get(f.id);
    if (!v) verdicts.set(f.id, (v = acsVerdict(f, override)));
    return v;
  };
  const out = new Map<number, Map<string, IsolationWarning>>();
  const add = (groupId: number, w: IsolationWarning): void => {
    let list = out.get(groupId);
    if (!list) out.set(groupId, (list = new Map()));
    const key = `${w.code}|${w.deviceId ?? ''}`;
    if (!list.has(key)) list.set(key, w);
  };

  for (const d of functions) {
    if (d.groupId === null) continue;
    // The path to the root, nearest bridge first (pci_acs_path_enabled() walks the same hops).
    const seen = new Set<string>();
    for (let p = d.upstream === null ? undefined : byId.get(d.upstream); p && !seen.has(p.id); p = p.upstream === null ? undefined : byId.get(p.upstream)) {
      seen.add(p.id);
      const v = verdict(p);
      // The kernel put them together exactly when it found no isolation at or above p.
      const together = p.groupId === d.groupId;
      if (v.byOverride && !together) {
        add(d.groupId, {
          code: 'acs-override',
          deviceId: p.id,
          detail: `${describeFunction(p)} above ${d.id}: ${v.why}; the devices below it can still reach each other by peer-to-peer DMA`,
        });
      } else if (v.isolates === false && together) {
        add(d.groupId, {
          code: 'no-acs',
          deviceId: p.id,
          detail: `${describeFunction(p)} above ${d.id} does not isolate (${v.why}): DMA from below it can reach its peers${typeOf(p) === PCI_EXP_TYPE.DOWNSTREAM ? ', the other ports of the same switch included,' : ''} without passing through the IOMMU`,
        });
      } else if (v.isolates === null && together) {
        add(d.groupId, {
          code: 'no-acs',
          deviceId: p.id,
          detail: `the kernel grouped ${d.id} with the bridge ${p.id} above it: ACS is missing at or above ${p.id} (${v.why}; read the configuration space as root to say more)`,
        });
      } else if (v.isolates === null && override) {
        add(d.groupId, {
          code: 'acs-override',
          deviceId: p.id,
          detail: `whether ${p.id} above ${d.id} has ACS could not be read, and the kernel runs with pcie_acs_override=${override.text}: this group may be smaller than the hardware isolates`,
        });
      }
      // isolates === false but the kernel kept them apart: a device quirk the kernel knows of.
    }

    if (!d.multifunction) continue;
    const slot = slotOf(d.id);
    const siblings = functions.filter((s) => s.id !== d.id && s.upstream === d.upstream && slotOf(s.id) === slot);
    if (siblings.length === 0) continue;
    const v = verdict(d);
    const joined = siblings.filter((s) => s.groupId === d.groupId && verdict(s).isolates !== true);
    const first = [d, ...joined].map((f) => f.id).sort()[0]!;
    if (v.byOverride && siblings.some((s) => s.groupId !== d.groupId)) {
      add(d.groupId, {
        code: 'acs-override',
        deviceId: d.id,
        detail: `${d.id} is one function of the multi-function device ${slot}: ${v.why}; its sibling functions may still reach it by peer-to-peer DMA`,
      });
    } else if (v.isolates === false && joined.length > 0) {
      const ids = [d, ...joined].map((f) => f.id).sort();
      add(d.groupId, {
        code: 'multifunction-no-acs',
        deviceId: first,
        detail: `functions ${ids.join(', ')} of the multi-function device ${slot} lack ACS (${v.why}): they can reach each other by peer-to-peer DMA, so they form one group`,
      });
    } else if (v.isolates === null && joined.length > 0) {
      const ids = [d, ...joined].map((f) => f.id).sort();
      add(d.groupId, {
        code: 'multifunction-no-acs',
        deviceId: first,
        detail: `the kernel grouped functions ${ids.join(', ')} of the multi-function device ${slot} together: they lack ACS (${v.why}; read the configuration space as root to say more)`,
      });
    } else if (v.isolates === null && override && joined.length === 0) {
      add(d.groupId, {
        code: 'acs-override',
        deviceId: d.id,
        detail: `whether the multi-function device ${slot} has ACS could not be read, and the kernel runs with pcie_acs_override=${override.text}: its functions may reach each other`,
      });
    }
  }
  return new Map([...out].map(([g, m]) => [g, [...m.values()]]));
}

// ---- summary ----------------------------------------------------------------------------------

export interface WarningSummary {
  /** Groups with at least one warning. */
  groups: number[];
  /** Warnings by code over every group, plus one no-iommu per device without a group. */
  byCode: Record<IsolationWarningCode, number>;
  /** Devices no IOMMU translates: listed, never assignable. */
  devicesWithoutGroup: string[];
  /** Findings about the host as a whole. */
  host: HostWarning[];
}

export function summarizeWarnings(groups: readonly GroupRecord[], devices: readonly Device[], host: readonly HostWarning[]): WarningSummary {
  const byCode = Object.fromEntries(ISOLATION_WARNING_CODES.map((c) => [c, 0])) as Record<IsolationWarningCode, number>;
  for (const g of groups) for (const w of g.warnings ?? []) byCode[w.code]++;
  const devicesWithoutGroup = devices.filter((d) => d.groupId === null).map((d) => d.id).sort();
  byCode['no-iommu'] += devicesWithoutGroup.length;
  return {
    groups: groups.filter((g) => (g.warnings ?? []).length > 0).map((g) => g.id),
    byCode,
    devicesWithoutGroup,
    host: host.map((w) => ({ code: w.code, detail: w.detail })),
  };
}
