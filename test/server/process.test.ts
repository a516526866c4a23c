import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * The real entry point in a child process: flags and environment, the listening log line, the admin
 * token file, the single-server lock, and a clean exit on SIGTERM.
 */
interface Server {
  child: ChildProcessWithoutNullStreams;
  url: string;
  out: () => string;
}

let dir: string;
const children: ChildProcessWithoutNullStreams[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ioasd-proc-'));
});
afterEach(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.length = 0;
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH, IOASD_PORT: '0', IOASD_DB: join(dir, 'ioasd.db'), ...env },
  });
  children.push(child);
  return child;
}

function collect(child: ChildProcessWithoutNullStreams): () => string {
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString()));
  child.stderr.on('data', (b: Buffer) => (text += b.toString()));
  return () => text;
}

async function start(args: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const child = run(args, env);
  const out = collect(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${out()}`)), 15_000);
    child.stdout.on('data', () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}:\n${out()}`)));
  });
  return { child, url, out };
}

function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('ioasd process', () => {
  it('starts on the embedded default, writes the admin token 0600 without logging it, and stops on SIGTERM', async () => {
    const s = await start();
    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const tokenFile = join(dir, 'admin.token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const groups = await fetch(`${s.url}/v1/groups`, { headers: { authorization: `Bearer ${token}` } });
    expect(groups.status).toBe(200);
    expect(((await groups.json()) as unknown[]).length).toBe(13);
    s.child.kill('SIGTERM');
    expect(await exited(s.child)).toBe(0);
    const log = s.out();
    expect(log).toContain(tokenFile);
    expect(log).not.toContain(token);
    expect(log).toContain('"reqId"');
    expect(log).toContain('shutting down');
  });

  it('refuses a second server on the same database with a clear message', async () => {
    const first = await start();
    const second = run([]);
    const out = collect(second);
    expect(await exited(second)).toBe(1);
    expect(out()).toContain('in use by another ioasd server');
    first.child.kill('SIGTERM');
    expect(await exited(first.child)).toBe(0);
  });

  it('keeps its state across a restart, and honours IOASD_ADMIN_TOKEN', async () => {
    const fixed = 'fixed-admin-token-for-tests';
    const a = await start([], { IOASD_ADMIN_TOKEN: fixed });
    const headers = { authorization: `Bearer ${fixed}`, 'content-type': 'application/json' };
    const created = await fetch(`${a.url}/v1/principals`, { method: 'POST', headers, body: JSON.stringify({ name: 'alice' }) });
    const alice = (await created.json()) as { token: string };
    await fetch(`${a.url}/v1/devices/0000:01:00.1/driver`, { method: 'PUT', headers, body: JSON.stringify({ driver: 'vfio-pci' }) });
    a.child.kill('SIGKILL');
    await exited(a.child);

    const b = await start(['--policy', 'group-first']);
    const sys = await fetch(`${b.url}/v1/system`, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(((await sys.json()) as { policy: string }).policy).toBe('group-first');
    const group = await fetch(`${b.url}/v1/groups/1`, { headers: { authorization: `Bearer ${fixed}` } });
    expect(((await group.json()) as { viable: boolean }).viable).toBe(true);
    b.child.kill('SIGTERM');
    expect(await exited(b.child)).toBe(0);
  });

  it('loads --topology FILE, and refuses a broken one with every problem and a non-zero exit', async () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({
      iommu: { pageSizes: ['0x1000'], aperture: { start: '0x0', last: '0xffffffff' } },
      groups: [{ id: 7, kind: 'iommu' }],
      devices: [{ id: '0000:0a:00.0', kind: 'pci', groupId: 7, driver: 'vfio-pci' }],
    }));
    const s = await start(['--topology', good], { IOASD_ADMIN_TOKEN: 'fixed-admin-token-for-tests' });
    const groups = await fetch(`${s.url}/v1/groups`, { headers: { authorization: 'Bearer fixed-admin-token-for-tests' } });
    expect(((await groups.json()) as { id: number }[]).map((g) => g.id)).toEqual([7]);
    s.child.kill('SIGTERM');
    await exited(s.child);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ groups: [{ id: 1, kind: 'iommu' }], devices: [{ id: 'x', kind: 'pci', groupId: 2 }, { id: 'x', kind: 'pci', groupId: 1 }] }));
    const refused = run(['--topology', bad, '--db', join(dir, 'other.db')]);
    const out = collect(refused);
    expect(await exited(refused)).toBe(1);
    expect(out()).toContain('names missing group 2');
    expect(out()).toContain('device x is named twice');
  });

  it('keeps an acknowledged map through kill -9, and releases a lease that ran out while it was down', async () => {
    const token = 'fixed-admin-token-for-tests';
    const env = { IOASD_ADMIN_TOKEN: token };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const a = await start([], env);
    const post = async (url: string, body: object) => {
      const res = await fetch(`${a.url}${url}`, { method: 'POST', headers, body: JSON.stringify(body) });
      return (await res.json()) as Record<string, unknown>;
    };
    const ctx = (await post('/v1/contexts', {})).id as string;
    const ioas = (await post('/v1/ioas', { contextId: ctx })).id as number;
    const leased = (await post('/v1/contexts', { leaseSeconds: 1 })).id as string;
    await post('/v1/ioas', { contextId: leased });
    const mapped = await post(`/v1/ioas/${ioas}/mappings`, { iova: '0xfffffffffffff000', length: '0x1000', userAddress: '0x7f0000000000' });
    expect(mapped.iova).toBe('0xfffffffffffff000');
    a.child.kill('SIGKILL'); // right after the answer: no shutdown, no checkpoint
    await exited(a.child);
    await new Promise((r) => setTimeout(r, 1100));

    const b = await start([], env);
    const list = await fetch(`${b.url}/v1/ioas/${ioas}/mappings`, { headers });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([
      { iova: '0xfffffffffffff000', length: '0x1000', userAddress: '0x7f0000000000', read: true, write: true },
    ]);
    const contexts = (await (await fetch(`${b.url}/v1/contexts`, { headers })).json()) as { id: string }[];
    expect(contexts.map((c) => c.id)).toEqual([ctx]);
    // Every invariant holds after the crash, memory equal to the database.
    expect(await (await fetch(`${b.url}/v1/system/check`, { headers })).json()).toMatchObject({ ok: true, violations: [] });
    b.child.kill('SIGTERM');
    expect(await exited(b.child)).toBe(0);
  });

  it('under concurrent writes (group commit), kill -9 loses nothing that was acknowledged', async () => {
    const token = 'fixed-admin-token-for-tests';
    const env = { IOASD_ADMIN_TOKEN: token };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const a = await start([], env);
    const post = async (url: string, body: object) => fetch(`${a.url}${url}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const ctx = ((await (await post('/v1/contexts', {})).json()) as { id: string }).id;
    const ioas = ((await (await post('/v1/ioas', { contextId: ctx })).json()) as { id: number }).id;
    const acknowledged: string[] = [];
    let next = 0;
    let killed = false;
    // 16 clients map one page each, as fast as answers come, until the server dies under them.
    const client = async () => {
      while (!killed) {
        const iova = `0x${(0x100000 + next++ * 0x1000).toString(16)}`;
        try {
          const res = await post(`/v1/ioas/${ioas}/mappings`, { iova, length: '0x1000', userAddress: '0x7f0000000000' });
          if (res.status === 201) acknowledged.push(iova);
          else await res.body?.cancel();
        } catch {
          return; // the connection died with the server
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    while (acknowledged.length < 200) await new Promise((r) => setTimeout(r, 5));
    a.child.kill('SIGKILL');
    killed = true;
    await exited(a.child);
    await Promise.all(clients);

    const b = await start([], env);
    const kept = new Set<string>();
    let after = '';
    for (;;) {
      const page = (await (await fetch(`${b.url}/v1/ioas/${ioas}/mappings?limit=1000${after}`, { headers })).json()) as { items: { iova: string }[]; nextCursor: string | null };
      for (const m of page.items) kept.add(m.iova);
      if (page.nextCursor === null) break;
      after = `&cursor=${page.nextCursor}`;
    }
    expect(acknowledged.filter((iova) => !kept.has(iova))).toEqual([]);
    expect(await (await fetch(`${b.url}/v1/system/check`, { headers })).json()).toMatchObject({ ok: true, violations: [] });
    b.child.kill('SIGTERM');
    expect(await exited(b.child)).toBe(0);
  });

  it('exits 2 with usage on a bad flag', async () => {
    const child = run(['--port', 'nope']);
    const out = collect(child);
    expect(await exited(child)).toBe(2);
    expect(out()).toContain('--port/IOASD_PORT');
  });
});
