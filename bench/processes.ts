/**
 * The servers the HTTP figures measure, each a child process on the server CPU: ioasd started as the
 * container starts it (`node <npm start's flags> dist/main.js`, configured by IOASD_* variables, on a
 * fresh database in a temporary directory), and the standalone baselines of bench/baselines/.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pinning } from './settings.js';

const ROOT = new URL('..', import.meta.url).pathname;

/**
 * Node's flags for the service, read from package.json's start script (`node <flags> dist/main.js`),
 * the same flags as the Dockerfile's CMD: so the benchmark follows them when they change.
 */
export function serviceNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const m = /\bnode ((?:--\S+ )*)dist\/main\.js/.exec(pkg.scripts.start ?? '');
  if (!m) throw new Error('package.json "start" is not `... node <flags> dist/main.js`: the benchmark cannot tell the service flags');
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

let ticks: number | undefined;

/**
 * CPU seconds a process has used so far (user + system, from /proc/<pid>/stat), or undefined where
 * there is no /proc. With the load generator's own, it tells which side was the limit of a run.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks; // utime and stime, fields 14 and 15
  } catch {
    return undefined;
  }
}

/**
 * Busy CPU seconds so far of one CPU (`cpu0`; the whole machine where nothing is pinned), from
 * /proc/stat: user, nice, system, irq, softirq and steal. Busy minus the server's own share is what
 * other processes took from the server's CPU during a run: on a shared machine, the noise.
 */
export function cpuBusySeconds(cpu: string): number | undefined {
  try {
    ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`${cpu} `));
    if (!line) return undefined;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / ticks;
  } catch {
    return undefined;
  }
}

export interface Server {
  name: string;
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

function spawnPinned(pin: string[], args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const [cmd, ...rest] = [...pin, process.execPath, ...args];
  return spawn(cmd!, rest, { cwd: ROOT, ...options });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
}

/** Waits until `probe` returns a value, the child exits (an error with `why()`), or 60 s pass. */
async function until<T>(child: ChildProcess, probe: () => T | undefined, why: () => string): Promise<T> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const v = probe();
    if (v !== undefined) return v;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before listening:\n${why()}`);
    await sleep(20);
  }
  child.kill('SIGKILL');
  throw new Error(`not listening after 60 s:\n${why()}`);
}

export interface Ioasd extends Server {
  token: string;
  log: string;
}

/**
 * ioasd on a new database under `dir` (data/ioasd.db), its log (JSON lines, the default level, as in
 * the container) written to dir/ioasd.log. The admin token is the one it writes into its data
 * directory. The rate limit is raised out of reach (`IOASD_RATE_LIMIT`), not turned off, so the
 * limiter still runs on every request as it does in production.
 */
export async function startIoasd(dir: string): Promise<Ioasd> {
  const log = join(dir, 'ioasd.log');
  const out = openSync(log, 'a');
  const child = spawnPinned(pinning.server, [...serviceNodeFlags(), 'dist/main.js'], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      IOASD_HOST: '127.0.0.1',
      IOASD_PORT: '0',
      IOASD_DB: join(dir, 'data', 'ioasd.db'),
      IOASD_RATE_LIMIT: '999999999/1s',
    },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const text = () => readFileSync(log, 'utf8');
  const url = await until(child, () => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(text())?.[1], text);
  const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
  return { name: 'ioasd', url, token, log, child, stop: stopper(child) };
}

/**
 * A baseline server (bench/baselines/<name>.ts) with the service's Node flags, on the server CPU.
 * It prints `listening <url>` once ready; `env` tells it where its database goes.
 */
export async function startBaseline(name: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawnPinned(pinning.server, [...serviceNodeFlags(), '--import', 'tsx', `bench/baselines/${name}.ts`], {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = await until(child, () => /^listening (http:\S+)$/m.exec(out)?.[1], () => out);
  return { name, url, child, stop: stopper(child) };
}
