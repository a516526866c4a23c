/**
 * Shared helpers of the benchmark suite: figures and the summary table, medians, temporary
 * directories (always removed), a deterministic PRNG, child processes for measurements that need a
 * heap of their own, and the database settings ioasd uses (for the baselines).
 */
import Database from 'better-sqlite3';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One line of the summary table. A figure with a target gets PASS or MISS next to it. */
export interface Figure {
  section: string;
  name: string;
  value: string;
  /** Raw numbers behind the figure (the baseline's, each round's), shown under the table. */
  raw?: string;
  target?: string;
  pass?: boolean;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Thousands separators and a fixed number of decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Three significant digits, for ns/op figures that span 100 ns to 10 ms. */
export function sig(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(n) || 1)));
  return fmt(n, digits);
}

export function list(xs: readonly number[], digits = 0): string {
  return `[${xs.map((x) => fmt(x, digits)).join(', ')}]`;
}

export function table(figures: readonly Figure[]): string {
  if (figures.length === 0) return '(no figures)';
  const w = Math.max(...figures.map((f) => f.name.length));
  const v = Math.max(...figures.map((f) => f.value.length));
  const lines: string[] = [];
  let section = '';
  for (const f of figures) {
    if (f.section !== section) {
      section = f.section;
      lines.push(`-- ${section} ${'-'.repeat(Math.max(0, w + v - section.length))}`);
    }
    const verdict = f.target === undefined ? '' : `   target ${f.target}  ${f.pass ? 'PASS' : 'MISS'}`;
    lines.push(`${f.name.padEnd(w)}  ${f.value.padStart(v)}${verdict}`);
  }
  return lines.join('\n');
}

const tempDirs = new Set<string>();

/** A fresh directory under the system temp dir, removed by {@link cleanUp} (also on Ctrl-C). */
export function tempDir(prefix: string): { dir: string; path: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return {
    dir,
    path: (name) => join(dir, name),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

const children = new Set<ChildProcess>();

export function cleanUp(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** xorshift32: the same random positions in every run and every process. */
export function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

export const nowNs = (): bigint => process.hrtime.bigint();
export const secondsSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * Runs one task of worker.ts in a child process of its own (its own heap, its own JIT state) and
 * answers what the task sends back. The child inherits the tsx loader through process.execArgv.
 */
export function inChild<T>(task: string, args: unknown, options: { heapMb?: number } = {}): Promise<T> {
  const script = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const execArgv = [...process.execArgv, '--expose-gc'];
  if (options.heapMb) execArgv.push(`--max-old-space-size=${options.heapMb}`);
  return new Promise<T>((resolve, reject) => {
    const child = fork(script, [task, JSON.stringify(args)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    let result: { ok: true; value: T } | { ok: false; error: string } | undefined;
    child.on('message', (m) => (result = m as typeof result));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (result?.ok) resolve(result.value);
      else reject(new Error(`bench task ${task} failed (exit ${code ?? signal}): ${result && !result.ok ? result.error : 'no answer'}`));
    });
  });
}

/** The settings openDatabase (src/store/database.ts) gives the server's database. */
export function openLikeIoasd(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('busy_timeout = 250');
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.exec('BEGIN EXCLUSIVE; COMMIT');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** The bare baseline's table: the same key and columns as `mappings` (migrations/0002_allocator.sql). */
export const BARE_TABLE = `CREATE TABLE t (
  ioas_id INTEGER NOT NULL, iova INTEGER NOT NULL, length INTEGER NOT NULL, user_address INTEGER NOT NULL,
  flags INTEGER NOT NULL, PRIMARY KEY (ioas_id, iova)
) STRICT, WITHOUT ROWID`;

export const OFFSET = 1n << 63n;

/** The admin token every app in the suite is built with. */
export const BENCH_TOKEN = 'bench-admin-token-0123456789';
