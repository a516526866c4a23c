import type { Iommu } from '../core/model.js';

/**
 * IOMMU capabilities from the registers sysfs shows under class/iommu/<unit>, decoded as the kernel
 * decodes them for a paging domain, so the page sizes, aperture, PASID width and features are what
 * iommufd would actually offer on that host:
 * - Intel VT-d: `intel-iommu/cap` and `ecap` (printed "%llx"), with the macros of
 *   drivers/iommu/intel/iommu.h and the domain set-up of paging_domain_alloc() (intel/iommu.c);
 *   the second-stage table (what a nest parent or a dirty-tracking domain gets, SPEC 11).
 * - AMD-Vi: `amd-iommu/cap` (the PCI capability header, "%x") and `features` (EFR, "%llx", since
 *   v6.x "EFR:EFR2" — older kernels printed "EFR2:EFR"), with the FEATURE_* bits of
 *   drivers/iommu/amd/amd_iommu_types.h and amd_iommu_domain_alloc_paging_v1/v2() (amd/iommu.c).
 * Reserved regions are not here: they come per group from sysfs.
 */

export interface IntelUnit {
  name: string;
  cap: bigint;
  ecap: bigint;
}

export interface AmdUnit {
  name: string;
  /** The IOMMU capability header at cap_ptr. */
  cap: number;
  efr: bigint;
  efr2: bigint;
}

/** Kernel command-line options that change what a domain offers. */
export interface IommuCmdline {
  /** intel_iommu=sm_off: no scalable mode (CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON is taken as y). */
  intelSmOff: boolean;
  /** intel_iommu=sp_off: no super pages (intel_iommu_superpage = 0). */
  intelSpOff: boolean;
  /** amd_iommu=pgsize_4k: 4 KiB pages only (amd_iommu_pgsize_bitmap). */
  amdPgsize4k: boolean;
  /** amd_iommu=pgtbl_v2: the v2 table for domains without flags (amd_iommu_pgtable). */
  amdPgtblV2: boolean;
}

export function parseIommuCmdline(cmdline: string): IommuCmdline {
  const opts = (name: string): string[] =>
    cmdline
      .split(/\s+/)
      .filter((a) => a.startsWith(`${name}=`))
      .flatMap((a) => a.slice(name.length + 1).split(','));
  const intel = opts('intel_iommu');
  const amd = opts('amd_iommu');
  return {
    intelSmOff: intel.lastIndexOf('sm_off') > intel.lastIndexOf('sm_on'),
    intelSpOff: intel.includes('sp_off'),
    amdPgsize4k: amd.includes('pgsize_4k'),
    amdPgtblV2: amd.includes('pgtbl_v2'),
  };
}

const bit = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
const field = (v: bigint, lo: number, width: number): number => Number((v >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));

const SZ_4K = 1n << 12n;
const SZ_2M = 1n << 21n;
const SZ_1G = 1n << 30n;
const SZ_512G = 1n << 39n;

/** The last address of an aperture `bits` wide (all ones at 64). */
function apertureLast(bits: number): bigint {
  return (1n << BigInt(bits)) - 1n;
}

// ---- Intel VT-d ---------------------------------------------------------------------------------

/** The intel/iommu.h macros this decoding uses, by name, so a test can hold them to the kernel's. */
export const vtd = {
  cap_mgaw: (c: bigint) => field(c, 16, 6) + 1,
  cap_sagaw: (c: bigint) => field(c, 8, 5),
  cap_super_page_val: (c: bigint) => field(c, 34, 4),
  cap_fl1gp_support: (c: bigint) => bit(c, 56),
  cap_fl5lp_support: (c: bigint) => bit(c, 60),
  ecap_nest: (e: bigint) => bit(e, 26),
  ecap_pss: (e: bigint) => field(e, 35, 5),
  ecap_pasid: (e: bigint) => bit(e, 40),
  ecap_smts: (e: bigint) => bit(e, 43),
  ecap_slads: (e: bigint) => bit(e, 45),
  ecap_slts: (e: bigint) => bit(e, 46),
  ecap_flts: (e: bigint) => bit(e, 47),
  ecap_smpwc: (e: bigint) => bit(e, 48),
};

/** fls(): the 1-based index of the highest set bit, 0 for none. */
function fls(v: number): number {
  return v === 0 ? 0 : 32 - Math.clz32(v);
}

/** agaw_to_width() and width_to_agaw() (LEVEL_STRIDE 9, MAX_AGAW_WIDTH 64). */
const agawToWidth = (agaw: number) => Math.min(30 + agaw * 9, 64);
const widthToAgaw = (width: number) => Math.ceil((width - 30) / 9);

export function decodeIntel(u: IntelUnit, cmd: IommuCmdline): Iommu {
  const { cap, ecap } = u;
  // sm_supported(): intel_iommu_sm && ecap_smts.
  const sm = !cmd.intelSmOff && vtd.ecap_smts(ecap);
  // __iommu_calculate_sagaw(): second level only without scalable mode or first-level support,
  // first level only without second-level support, otherwise what both can walk.
  const flSagaw = (1 << 2) | (vtd.cap_fl5lp_support(cap) ? 1 << 3 : 0);
  const slSagaw = vtd.cap_sagaw(cap);
  const sagaw = !sm || !vtd.ecap_flts(ecap) ? slSagaw : !vtd.ecap_slts(ecap) ? flSagaw : flSagaw & slSagaw;
  // __iommu_calculate_agaw(iommu, DEFAULT_DOMAIN_ADDRESS_WIDTH = 57): the widest supported <= 57.
  let agaw = widthToAgaw(57);
  while (agaw >= 0 && (sagaw & (1 << agaw)) === 0) agaw--;
  // paging_domain_alloc(): the address width is the agaw's, capped by MGAW; a second-stage domain's
  // aperture is all of it (a first-stage one loses the top bit to canonical addressing).
  const gaw = agaw < 0 ? 0 : Math.min(agawToWidth(agaw), vtd.cap_mgaw(cap));
  // iommu_superpage_capability(): fls(cap_super_page_val) for the second stage; 1 -> 2 MiB,
  // 2 -> 2 MiB and 1 GiB (domain_super_pgsize_bitmap()); intel_iommu=sp_off -> none.
  const superpage = cmd.intelSpOff ? 0 : fls(vtd.cap_super_page_val(cap));
  const pageSizes = [SZ_4K];
  if (superpage >= 1) pageSizes.push(SZ_2M);
  if (superpage >= 2) pageSizes.push(SZ_1G);
  const pasid = sm && vtd.ecap_pasid(ecap); // pasid_supported()
  // A nest parent and a dirty-tracking domain need a second-stage table (sm && slts), plus
  // nested_supported() (sm && nest) or ssads_supported() (sm && slads && smpwc).
  const secondStage = sm && vtd.ecap_slts(ecap);
  return {
    pageSizes,
    aperture: { start: 0n, last: gaw === 0 ? 0n : apertureLast(gaw) },
    reservedRegions: [],
    // max_pasids = 2 << ecap_pss: PSS + 1 bits.
    pasidBits: pasid ? Math.min(vtd.ecap_pss(ecap) + 1, 20) : 0,
    features: {
      pasid,
      nesting: secondStage && vtd.ecap_nest(ecap),
      dirtyTracking: secondStage && vtd.ecap_slads(ecap) && vtd.ecap_smpwc(ecap),
    },
  };
}

// ---- AMD-Vi --------------------------------------------------------------------------------------

/** The amd_iommu_types.h bits this decoding uses, by name. */
export const amdvi = {
  IOMMU_CAP_EFR: 27,
  FEATURE_PPR: 1,
  FEATURE_GT: 4,
  FEATURE_HATS: [10, 2] as const,
  FEATURE_GATS: [12, 2] as const,
  FEATURE_PASMAX: [32, 5] as const,
  FEATURE_GIOSUP: 48,
  FEATURE_EPHSUP: 50,
  FEATURE_HDSUP: 52,
  /** In EFR2. */
  FEATURE_GCR3TRPMODE: 3,
};

/**
 * The `features` file: "EFR:EFR2" (v6.7+), "EFR2:EFR" (the first kernels with EFR2), or "EFR".
 * The order cannot be told from the file, so the half that defines bits above 15 is taken as the
 * EFR: the kernel defines no EFR2 bit above 11, while every EFR with PASID or a page-table level
 * field has some (PASMAX at 36:32, HATS at 11:10 ...).
 */
export function parseAmdFeatures(text: string): { efr: bigint; efr2: bigint } | null {
  const parts = text.trim().split(':');
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => !/^[0-9a-f]{1,16}$/i.test(p))) return null;
  const [a, b] = parts.map((p) => BigInt('0x' + p)) as [bigint, bigint | undefined];
  if (b === undefined) return { efr: a, efr2: 0n };
  const high = (v: bigint) => v >> 16n !== 0n;
  return high(b) && !high(a) ? { efr: b, efr2: a } : { efr: a, efr2: b };
}

export function decodeAmd(u: AmdUnit, cmd: IommuCmdline): Iommu {
  // late_iommu_features_init(): no EFR without the capability bit.
  const hasEfr = ((u.cap >>> amdvi.IOMMU_CAP_EFR) & 1) === 1;
  const efr = hasEfr ? u.efr : 0n;
  const efr2 = hasEfr ? u.efr2 : 0n;
  const has = (n: number) => bit(efr, n);
  // HATS 3 is a firmware bug: host translation is disabled (amd_iommu_hatdis), only v2 remains.
  const hats = field(efr, ...amdvi.FEATURE_HATS);
  const hatdis = hats === 3;
  const hptLevel = hats + 4;
  // amd_iommu_v2_pgtbl_supported(): the v2 table needs guest translation (GT) and GIOSUP.
  const v2 = has(amdvi.FEATURE_GT) && has(amdvi.FEATURE_GIOSUP);
  // A domain allocated without flags uses the command line's default table, the other if refused.
  const useV2 = hatdis || (cmd.amdPgtblV2 && v2);
  let pageSizes: bigint[];
  let apertureBits: number;
  if (useV2) {
    // AMD_IOMMU_PGSIZES_V2, 4-level guest table (the top bit dropped, amd_iommu_domain_alloc_paging_v2()).
    pageSizes = [SZ_4K, SZ_2M, SZ_1G];
    apertureBits = 47;
  } else {
    // AMD_IOMMU_PGSIZES: every power of two from 4 KiB below 2^52 except 512 GiB (a hardware bug).
    pageSizes = [];
    for (let s = SZ_4K; s < 1n << 52n; s <<= 1n) if (s !== SZ_512G) pageSizes.push(s);
    // hw_max_vasz_lg2 = min(64, (amd_iommu_hpt_level - 1) * 9 + 21).
    apertureBits = Math.min(64, (hptLevel - 1) * 9 + 21);
  }
  if (cmd.amdPgsize4k) pageSizes = [SZ_4K];
  // amd_iommu_pasid_supported() -> amd_iommu_gt_ppr_supported(): GT, PPR and EPHSUP (the kernel also
  // says no on an SEV-SNP host, which sysfs does not show).
  const pasid = has(amdvi.FEATURE_GT) && has(amdvi.FEATURE_PPR) && has(amdvi.FEATURE_EPHSUP);
  return {
    pageSizes,
    aperture: { start: 0n, last: apertureLast(apertureBits) },
    reservedRegions: [],
    // max_pasids = (1 << (PASMAX + 1)) - 1: PASMAX + 1 bits.
    pasidBits: pasid ? Math.min(field(efr, ...amdvi.FEATURE_PASMAX) + 1, 20) : 0,
    features: {
      pasid,
      // is_nest_parent_supported(): GT, GIOSUP and EFR2 GCR3TRPMODE; on the v1 table.
      nesting: !hatdis && has(amdvi.FEATURE_GT) && has(amdvi.FEATURE_GIOSUP) && bit(efr2, amdvi.FEATURE_GCR3TRPMODE),
      // amd_iommu_hd_support(): HDSUP, on the v1 table.
      dirtyTracking: !hatdis && has(amdvi.FEATURE_HDSUP),
    },
  };
}

// ---- several units ---------------------------------------------------------------------------------

/** When nothing is readable: the 4 KiB page every IOMMU has and a 48-bit aperture, no features. */
export const FALLBACK_IOMMU: Iommu = {
  pageSizes: [SZ_4K],
  aperture: { start: 0n, last: apertureLast(48) },
  reservedRegions: [],
  pasidBits: 0,
  features: { nesting: false, pasid: false, dirtyTracking: false },
};

/** What every unit offers: ioasd has one IOMMU model, and a device may sit behind any unit. */
export function intersectIommus(units: readonly Iommu[]): Iommu {
  const [first, ...rest] = units;
  if (!first) return FALLBACK_IOMMU;
  return rest.reduce<Iommu>(
    (acc, u) => ({
      pageSizes: acc.pageSizes.filter((p) => u.pageSizes.includes(p)),
      aperture: { start: acc.aperture.start > u.aperture.start ? acc.aperture.start : u.aperture.start, last: acc.aperture.last < u.aperture.last ? acc.aperture.last : u.aperture.last },
      reservedRegions: [],
      pasidBits: Math.min(acc.pasidBits, u.pasidBits),
      features: {
        nesting: acc.features.nesting && u.features.nesting,
        pasid: acc.features.pasid && u.features.pasid,
        dirtyTracking: acc.features.dirtyTracking && u.features.dirtyTracking,
      },
    }),
    first,
  );
}

/** A register file as sysfs prints it ("%llx", no 0x), or null. */
export function parseHexRegister(text: string | null): bigint | null {
  const t = text?.trim();
  return t && /^(0x)?[0-9a-f]{1,16}$/i.test(t) ? BigInt(t.startsWith('0x') ? t : '0x' + t) : null;
}
