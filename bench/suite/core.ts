/**
 * Section "core": map+unmap cost in the allocator core at 1k, 100k and 1M live mappings, with a store
 * that does no I/O. Every size runs in a child process of its own (its own heap: the 1k figure is not
 * slowed by the 1M heap's garbage collections), and the sizes alternate over the rounds so the
 * machine's noise spreads evenly. Each figure is the median over rounds of the median over chunks.
 */
import { fmt, inChild, list, median, sig, type Figure } from './common.js';
import type { CoreArgs, CoreResult } from './worker.js';

export const CORE_SIZES = [1_000, 100_000, 1_000_000];

export interface CoreFigures {
  figures: Figure[];
  /** ns per fixed unmap+map pair by size (median), for the store section's comparison. */
  fixedNs: Map<number, number>;
}

export async function benchCore(opts: { rounds: number; quick: boolean }): Promise<CoreFigures> {
  const scale = opts.quick ? 0.25 : 1;
  const args = (n: number, round: number): CoreArgs => ({
    n,
    warmOps: Math.round(20_000 * scale),
    fixedOps: Math.round(100_000 * scale),
    autoOps: Math.round(100_000 * scale),
    holeOps: Math.round(50_000 * scale),
    chunks: 3,
    seed: 0x5eed + round,
  });
  const results = new Map<number, CoreResult[]>(CORE_SIZES.map((n) => [n, []]));
  for (let round = 0; round < opts.rounds; round++) {
    for (const n of CORE_SIZES) {
      const r = await inChild<CoreResult>('core', args(n, round), { heapMb: 4096 });
      results.get(n)!.push(r);
      console.log(
        `core   round ${round + 1}  n=${fmt(n).padStart(9)}  populate ${fmt(r.populateSeconds, 2)} s, heap ${fmt(r.heapMb)} MB | ` +
          `fixed ${list(r.fixed)} ns/op (gc ${fmt(r.gcShare.fixed * 100)}%) | auto ${list(r.auto)} ns/op (gc ${fmt(r.gcShare.auto * 100)}%) | ` +
          `hole ${list(r.hole)} ns/op (gc ${fmt(r.gcShare.hole * 100)}%)`,
      );
    }
  }
  const per = (n: number, key: 'fixed' | 'auto' | 'hole') => results.get(n)!.map((r) => median(r[key]));
  const med = (n: number, key: 'fixed' | 'auto' | 'hole') => median(per(n, key));
  const figures: Figure[] = [];
  const fixedNs = new Map<number, number>();
  const block = (key: 'fixed' | 'auto' | 'hole', label: string) => {
    for (const n of CORE_SIZES) {
      const ns = med(n, key);
      if (key === 'fixed') fixedNs.set(n, ns);
      figures.push({ section: 'core', name: `${label} @ ${fmt(n)}`, value: `${sig(ns)} ns/op  ${fmt(1e9 / ns)} op/s`, raw: `rounds ${list(per(n, key))} ns/op` });
    }
    const ratio = med(1_000_000, key) / med(1_000, key);
    figures.push({ section: 'core', name: `${label}: cost 1M / 1k`, value: `${fmt(ratio, 2)}x`, target: '<= 2x', pass: ratio <= 2 });
  };
  block('fixed', 'unmap+map, random fixed iova');
  block('auto', 'auto map+unmap (fit above all)');
  block('hole', 'unmap, auto map into the hole, unmap, map');
  return { figures, fixedNs };
}
