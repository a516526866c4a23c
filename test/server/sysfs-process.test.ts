import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';

/** The real entry point on generated sysfs trees: --sysfs, --proc / IOASD_PROC, the no-IOMMU refusal. */

const trees = fixtureTrees();
const dir = mkdtempSync(join(tmpdir(), 'ioasd-sysfs-proc-'));
const children: ChildProcessWithoutNullStreams[] = [];
const TOKEN = 'fixed-admin-token-for-tests';
afterEach(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.length = 0;
});
afterAll(() => {
  trees.remove();
  rmSync(dir, { recursive: true, force: true });
});

let dbs = 0;
function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH, IOASD_PORT: '0', IOASD_DB: join(dir, `ioasd-${++dbs}.db`), IOASD_ADMIN_TOKEN: TOKEN, ...env },
  });
  children.push(child);
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString()));
  child.stderr.on('data', (b: Buffer) => (text += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${text}`)), 15_000);
    child.stdout.on('data', () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`exited ${code}:\n${text}`)));
  });
  listening.catch(() => {});
  return { child, out: () => text, exited, listening };
}

const get = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('ioasd --sysfs', () => {
  it('exits non-zero on a host without IOMMU groups, naming intel_iommu=on / amd_iommu=on and --topology', async () => {
    const { sys, proc } = trees.host('iommu-off');
    const p = run(['--sysfs', sys, '--proc', proc]);
    expect(await p.exited).toBe(1);
    const out = p.out();
    for (const s of ['no IOMMU groups', 'intel_iommu=on', 'amd_iommu=on', '--topology', 'intel_iommu=off']) expect(out).toContain(s);
  });

  it('serves a real host: warnings in /v1/system, an idle rescan, and a clean stop', async () => {
    const { sys, proc } = trees.host('desktop');
    const p = run(['--sysfs', sys, '--proc', proc]);
    const url = await p.listening;
    const system = await get(`${url}/v1/system`);
    expect(system.body.warnings).toMatchObject({ groups: [1, 3, 7], devicesWithoutGroup: [], host: [] });
    expect(await get(`${url}/v1/topology/rescan`, { method: 'POST' })).toEqual({ status: 200, body: { dryRun: false, effects: [] } });
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('reads the kernel command line from IOASD_PROC', async () => {
    const { sys, proc } = trees.host('acs-override');
    const p = run(['--sysfs', sys], { IOASD_PROC: proc });
    const url = await p.listening;
    const warnings = (await get(`${url}/v1/system`)).body.warnings as { host: { code: string }[]; byCode: Record<string, number> };
    expect(warnings.host.map((w) => w.code)).toEqual(['acs-override']);
    expect(warnings.byCode['acs-override']).toBe(8);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });
});
