import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Figures are medians of alternating repeats; ratios against a baseline from the same run. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function tempDir(prefix: string): { dir: string; path: (name: string) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (name) => join(dir, name), done: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Figure {
  name: string;
  value: string;
  target?: string;
  pass?: boolean;
}

export function table(figures: Figure[]): string {
  const w = Math.max(...figures.map((f) => f.name.length));
  const v = Math.max(...figures.map((f) => f.value.length));
  return figures
    .map((f) => `${f.name.padEnd(w)}  ${f.value.padStart(v)}${f.target ? `   target ${f.target}: ${f.pass ? 'PASS' : 'MISS'}` : ''}`)
    .join('\n');
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
