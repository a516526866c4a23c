import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amdvi, decodeAmd, decodeIntel, intersectIommus, parseAmdFeatures, parseIommuCmdline, vtd } from '../../src/topology/iommu-caps.js';

const none = parseIommuCmdline('');
const bits = (n: number) => (1n << BigInt(n)) - 1n;
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

/**
 * The macros of drivers/iommu/intel/iommu.h, transcribed as written (shift, mask, +1), so the
 * decoder is held to the kernel's text rather than to a second reading of the VT-d spec.
 */
const kernel = {
  cap_mgaw: (c: bigint) => ((c >> 16n) & 0x3fn) + 1n,
  cap_sagaw: (c: bigint) => (c >> 8n) & 0x1fn,
  cap_super_page_val: (c: bigint) => (c >> 34n) & 0xfn,
  cap_fl1gp_support: (c: bigint) => (c >> 56n) & 1n,
  cap_fl5lp_support: (c: bigint) => (c >> 60n) & 1n,
  ecap_nest: (e: bigint) => (e >> 26n) & 0x1n,
  ecap_pss: (e: bigint) => (e >> 35n) & 0x1fn,
  ecap_pasid: (e: bigint) => (e >> 40n) & 0x1n,
  ecap_smts: (e: bigint) => (e >> 43n) & 0x1n,
  ecap_slads: (e: bigint) => (e >> 45n) & 0x1n,
  ecap_slts: (e: bigint) => (e >> 46n) & 0x1n,
  ecap_flts: (e: bigint) => (e >> 47n) & 0x1n,
  ecap_smpwc: (e: bigint) => (e >> 48n) & 0x1n,
};

describe('VT-d register macros', () => {
  it('agree with the kernel macros for every register value', () => {
    fc.assert(
      fc.property(u64, (r) => {
        for (const [name, macro] of Object.entries(kernel)) {
          const ours = (vtd as Record<string, (v: bigint) => number | boolean>)[name]!(r);
          expect(BigInt(typeof ours === 'boolean' ? Number(ours) : ours)).toBe(macro(r));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decode real registers to the fields dmesg lists for them', () => {
    // Client GFX unit (jasonmontleon/pixelbook-fedora#5): MGAW 39, SAGAW 4-level, 2M+1G, no scalable mode.
    const c = 0x1c0000c40660462n;
    const e = 0x19e2ff0505en;
    expect([vtd.cap_mgaw(c), vtd.cap_sagaw(c), vtd.cap_super_page_val(c), vtd.ecap_smts(e), vtd.ecap_pss(e), vtd.ecap_pasid(e)]).toEqual([39, 0b00100, 0b0011, false, 19, true]);
    // Sapphire Rapids (intel/intel-device-plugins-for-kubernetes#1836): MGAW 57, SAGAW 4+5-level, FL 5-level.
    const sc = 0x19ed008c40780c66n;
    const se = 0x3ee9e86f050dfn;
    expect([vtd.cap_mgaw(sc), vtd.cap_sagaw(sc), vtd.cap_fl5lp_support(sc), vtd.cap_fl1gp_support(sc)]).toEqual([57, 0b01100, true, true]);
    expect([vtd.ecap_smts(se), vtd.ecap_pasid(se), vtd.ecap_nest(se), vtd.ecap_slads(se), vtd.ecap_slts(se), vtd.ecap_flts(se), vtd.ecap_smpwc(se)]).toEqual([
      true, false, true, true, true, true, true,
    ]);
  });
});

describe('decodeIntel', () => {
  it('takes the aperture from the widest supported AGAW capped by MGAW', () => {
    expect(decodeIntel({ name: 'x', cap: 0x1c0000c40660462n, ecap: 0x19e2ff0505en }, none).aperture.last).toBe(bits(39));
    expect(decodeIntel({ name: 'x', cap: 0x8d2078c106f0466n, ecap: 0xf020dfn }, none).aperture.last).toBe(bits(48));
    expect(decodeIntel({ name: 'x', cap: 0x19ed008c40780c66n, ecap: 0x3ee9e86f050dfn }, none).aperture.last).toBe(bits(57));
  });

  it('honours intel_iommu=sm_off and sp_off', () => {
    const spr = { name: 'x', cap: 0x19ed008c40780c66n, ecap: 0x3ee9e86f050dfn };
    const smOff = decodeIntel(spr, parseIommuCmdline('intel_iommu=on,sm_off'));
    expect(smOff.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
    // Without scalable mode only the second-level SAGAW counts: 4- and 5-level, so still 57 bits.
    expect(smOff.aperture.last).toBe(bits(57));
    expect(decodeIntel(spr, parseIommuCmdline('intel_iommu=on intel_iommu=sp_off')).pageSizes).toEqual([0x1000n]);
    expect(parseIommuCmdline('intel_iommu=sm_off,sm_on').intelSmOff).toBe(false);
  });

  it('needs scalable mode and the PASID bit for PASID, with PSS + 1 bits', () => {
    // The SPR ECAP with bit 40 set: what the same machine reports with PASID enabled in firmware.
    const d = decodeIntel({ name: 'x', cap: 0x19ed008c40780c66n, ecap: 0x3ee9e86f050dfn | (1n << 40n) }, none);
    expect(d.features.pasid).toBe(true);
    expect(d.pasidBits).toBe(20);
  });

  it('gives dirty tracking only with SLADS and SMPWC (ssads_supported)', () => {
    const noPwc = decodeIntel({ name: 'x', cap: 0x19ed008c40780c66n, ecap: 0x3ee9e86f050dfn & ~(1n << 48n) }, none);
    expect(noPwc.features.dirtyTracking).toBe(false);
    expect(noPwc.features.nesting).toBe(true);
  });
});

describe('AMD-Vi', () => {
  it('reads the features file in each format the kernel has printed', () => {
    expect(parseAmdFeatures('a5bf732fa2295afe\n')).toEqual({ efr: 0xa5bf732fa2295afen, efr2: 0n });
    expect(parseAmdFeatures('a5bf732fa2295afe:8')).toEqual({ efr: 0xa5bf732fa2295afen, efr2: 8n });
    expect(parseAmdFeatures('8:a5bf732fa2295afe')).toEqual({ efr: 0xa5bf732fa2295afen, efr2: 8n });
    expect(parseAmdFeatures('zz')).toBeNull();
  });

  const genoa = { name: 'ivhd0', cap: 0x190b640f, efr: 0xa5bf732fa2295afen, efr2: 0n };

  it('decodes the Genoa EFR (openvelinux/kernel#50): HATS 2 -> 6 levels, PASMAX 15, GT+PPR+EPHSUP, HDSUP', () => {
    const d = decodeAmd(genoa, none);
    expect(d.aperture.last).toBe(bits(64));
    expect(d.pasidBits).toBe(16);
    expect(d.features).toEqual({ nesting: false, pasid: true, dirtyTracking: true });
    expect(d.pageSizes).toHaveLength(39);
    expect(d.pageSizes).not.toContain(1n << 39n);
  });

  it('needs EFR2 GCR3TRPMODE (with GT and GIOSUP) for a nest parent', () => {
    expect(decodeAmd({ ...genoa, efr2: 1n << BigInt(amdvi.FEATURE_GCR3TRPMODE) }, none).features.nesting).toBe(true);
  });

  it('ignores the EFR when the capability header lacks EFRSup', () => {
    const d = decodeAmd({ ...genoa, cap: 0x190b640f & ~(1 << 27) }, none);
    expect(d.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
    expect(d.aperture.last).toBe(bits(48)); // HATS 0: 4 levels
  });

  it('honours amd_iommu=pgsize_4k and pgtbl_v2', () => {
    expect(decodeAmd(genoa, parseIommuCmdline('amd_iommu=pgsize_4k')).pageSizes).toEqual([0x1000n]);
    const v2 = decodeAmd(genoa, parseIommuCmdline('amd_iommu=pgtbl_v2'));
    expect(v2.pageSizes).toEqual([0x1000n, 0x200000n, 0x40000000n]);
    expect(v2.aperture.last).toBe(bits(47));
  });
});

describe('intersectIommus', () => {
  it('keeps what every unit has', () => {
    const a = decodeIntel({ name: 'a', cap: 0x19ed008c40780c66n, ecap: 0x3ee9e86f050dfn }, none);
    const b = decodeIntel({ name: 'b', cap: 0x1c0000c40660462n, ecap: 0x19e2ff0505en }, parseIommuCmdline('intel_iommu=sp_off'));
    const both = intersectIommus([a, b]);
    expect(both.pageSizes).toEqual([0x1000n]);
    expect(both.aperture.last).toBe(bits(39));
    expect(both.features).toEqual({ nesting: false, pasid: false, dirtyTracking: false });
    expect(intersectIommus([a])).toEqual(a);
  });
});
