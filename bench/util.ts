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

/** One row of the table: ioasd's figure, and beside it the baseline it is compared with. */
export interface Figure {
  name: string;
  /** ioasd's value, with its unit. */
  value: string;
  /** Latency of ioasd's requests (HTTP figures). */
  p50?: string;
  p99?: string;
  /** What the figure is compared with, and its value in the same run. */
  baseline?: string;
  baselineValue?: string;
  baselineP50?: string;
  baselineP99?: string;
  ratio?: string;
  target?: string;
  pass?: boolean;
}

const COLUMNS: [string, (f: Figure) => string | undefined][] = [
  ['figure', (f) => f.name],
  ['ioasd', (f) => f.value],
  ['p50', (f) => f.p50],
  ['p99', (f) => f.p99],
  ['baseline (same run)', (f) => f.baseline],
  ['baseline', (f) => f.baselineValue],
  ['p50', (f) => f.baselineP50],
  ['p99', (f) => f.baselineP99],
  ['ratio', (f) => f.ratio],
  ['target', (f) => f.target],
  ['', (f) => (f.pass === undefined ? undefined : f.pass ? 'PASS' : 'MISS')],
];

/** A Markdown table, padded so that it also reads in a terminal (the README's table is this output). */
export function table(figures: Figure[]): string {
  const cells = [COLUMNS.map(([title]) => title), ...figures.map((f) => COLUMNS.map(([, get]) => get(f) ?? ''))];
  const widths = COLUMNS.map((_, i) => Math.max(3, ...cells.map((row) => row[i]!.length)));
  // Text columns align left, numbers right.
  const left = (i: number) => i === 0 || i === 4;
  const line = (row: string[]) => `| ${row.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (left(i) ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Milliseconds with the digits that matter. */
export const ms = (n: number) => `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
