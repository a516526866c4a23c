/**
 * How long and how hard the benchmarks run. `npm run bench` is the full run the README's table comes
 * from; `-- --quick` (or BENCH_QUICK=1) shortens every round to iterate on the harness; each knob can
 * also be set alone:
 *   BENCH_SECONDS      length of one HTTP round (full 10, quick 2)
 *   BENCH_ROUNDS       rounds per HTTP figure, alternating with its baselines (full 5, quick 3)
 *   BENCH_CONNECTIONS  keep-alive connections of the load generator (50)
 *   BENCH_IDEMPOTENCY  0: writes without an Idempotency-Key (default 1: every write carries a fresh one)
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

function positive(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${text}: expected a positive integer`);
  return n;
}

export const settings = {
  quick,
  seconds: positive('BENCH_SECONDS', quick ? 2 : 10),
  rounds: positive('BENCH_ROUNDS', quick ? 3 : 5),
  connections: positive('BENCH_CONNECTIONS', 50),
  /** A warm-up run of each side before its first round (JIT, caches, SQLite pages). */
  warmupSeconds: quick ? 1 : 3,
  idempotency: process.env.BENCH_IDEMPOTENCY !== '0',
  /** Rounds of the in-process core benchmark and of the restart. */
  coreRounds: positive('BENCH_CORE_ROUNDS', quick ? 3 : 7),
  restartRounds: positive('BENCH_RESTART_ROUNDS', quick ? 2 : 3),
};

/**
 * Servers on CPU 0, the load generator on CPU 1 (taskset), so neither steals the other's core.
 * Without taskset or with fewer than two CPUs, nothing is pinned, and the table says so.
 */
export const pinning: { server: string[]; load: string[]; note: string } = (() => {
  let taskset = false;
  try {
    execFileSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
    taskset = true;
  } catch {
    taskset = false;
  }
  if (!taskset) return { server: [], load: [], note: 'taskset absent: servers and load generator NOT pinned (they share the CPUs)' };
  if (availableParallelism() < 2) return { server: [], load: [], note: 'one CPU only: servers and load generator NOT pinned' };
  return { server: ['taskset', '-c', '0'], load: ['taskset', '-c', '1'], note: 'servers pinned to CPU 0, load generator to CPU 1 (taskset)' };
})();
