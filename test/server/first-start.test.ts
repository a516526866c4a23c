import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * A start that explains itself, with the real process: one line saying where everything is, and
 * for a refused start one line of cause and fix, exit 1, and no new database or token file left.
 */
let dir: string;
const children: ChildProcessWithoutNullStreams[] = [];
const blockers: NetServer[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ioasd-first-'));
});
afterEach(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.length = 0;
  for (const b of blockers.splice(0)) await new Promise((r) => b.close(r));
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', IOASD_PORT: '0', ...env },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function ready(p: Proc): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /"msg":"(ioasd ready: [^"]*)"/.exec(p.stdout());
    if (m) return m[1]!;
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`not ready:\n${p.stdout()}\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(p: Proc): Promise<void> {
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
}

function occupiedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    blockers.push(s);
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

/** One line on standard error, `ioasd: ` then the cause and the fix. */
function oneLine(p: Proc): string {
  const lines = p.stderr().split('\n').filter((l) => l !== '');
  expect(lines, p.stderr()).toHaveLength(1);
  expect(lines[0]).toMatch(/^ioasd: /);
  return lines[0]!;
}

describe('the first start', () => {
  it('ends with one line: the API, /docs and /ui, and where the admin token was written; later starts say where it is', async () => {
    const db = join(dir, 'data', 'ioasd.db');
    const first = run(['--db', db]);
    const line = await ready(first);
    const url = /API (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(line)![1]!;
    expect(line).toBe(`ioasd ready: API ${url}/v1, docs ${url}/docs, UI ${url}/ui; admin token written to ${join(dir, 'data', 'admin.token')} (first start; mode 0600)`);
    const root = await fetch(`${url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui');
    expect((await fetch(`${url}/docs`)).status).toBe(200);
    await stop(first);

    const again = run(['--db', db]);
    expect(await ready(again)).toMatch(new RegExp(`; admin token in ${join(dir, 'data', 'admin.token').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    await stop(again);
    const fixed = run(['--db', db, '--host', '0.0.0.0'], { IOASD_ADMIN_TOKEN: 'fixed-admin-token-for-tests' });
    expect(await ready(fixed)).toMatch(/^ioasd ready: API http:\/\/127\.0\.0\.1:\d+\/v1, .* \(listening on every address\); admin token from IOASD_ADMIN_TOKEN$/);
    await stop(fixed);
  });
});

describe('a refused start: one line, exit 1, nothing new left behind', () => {
  it('a port in use: no database, -wal, token file or data directory is left', async () => {
    const port = await occupiedPort();
    const p = run(['--db', join(dir, 'data', 'ioasd.db'), '--port', String(port)]);
    expect(await p.exited).toBe(1);
    expect(oneLine(p)).toBe(
      `ioasd: cannot listen on 127.0.0.1:${port}: the port is in use by another program (another ioasd?); stop it, or choose another port with --port/IOASD_PORT (0 picks a free one)`,
    );
    expect(existsSync(join(dir, 'data'))).toBe(false);
    expect(p.stdout()).toContain('"level":60');

    // In a directory that was there already, the directory stays and holds nothing new.
    mkdirSync(join(dir, 'existing'));
    const q = run(['--db', join(dir, 'existing', 'ioasd.db'), '--port', String(port)]);
    expect(await q.exited).toBe(1);
    expect(readdirSync(join(dir, 'existing'))).toEqual([]);
  });

  it('a port in use on an existing database: the database and its token file stay as they were', async () => {
    const db = join(dir, 'ioasd.db');
    const first = run(['--db', db]);
    await ready(first);
    await stop(first);
    const token = readFileSync(join(dir, 'admin.token'), 'utf8');
    const files = readdirSync(dir).sort();
    const port = await occupiedPort();
    const p = run(['--db', db, '--port', String(port)]);
    expect(await p.exited).toBe(1);
    expect(oneLine(p)).toContain('the port is in use');
    expect(readdirSync(dir).sort()).toEqual(files);
    expect(readFileSync(join(dir, 'admin.token'), 'utf8')).toBe(token);
  });

  it('a database written by a newer ioasd: one line saying so and what to do; the file is left as it was', async () => {
    const db = join(dir, 'ioasd.db');
    const first = run(['--db', db]);
    await ready(first);
    await stop(first);
    const raw = new Database(db);
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from_the_future', 'x')").run();
    raw.close();
    const files = readdirSync(dir).sort();
    const bytes = readFileSync(db);
    const p = run(['--db', db]);
    expect(await p.exited).toBe(1);
    expect(oneLine(p)).toMatch(/^ioasd: database schema version 99 is newer than this ioasd \(it knows up to \d+\); run the newer ioasd, or restore a backup/);
    expect(readdirSync(dir).sort()).toEqual(files);
    expect(readFileSync(db).equals(bytes)).toBe(true);
  });

  it('an unreadable topology file: the path and where to fix it; no database', async () => {
    const missing = run(['--db', join(dir, 'data', 'ioasd.db'), '--topology', join(dir, 'nope.json')]);
    expect(await missing.exited).toBe(1);
    expect(oneLine(missing)).toMatch(/^ioasd: cannot read topology file .*nope\.json: ENOENT: .*; check the path given with --topology\/IOASD_TOPOLOGY$/);
    const directory = run(['--db', join(dir, 'data', 'ioasd.db'), '--topology', dir]);
    expect(await directory.exited).toBe(1);
    expect(oneLine(directory)).toContain('EISDIR');
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('a refused --policy: names what is held, by which context, and how to release it', async () => {
    const db = join(dir, 'ioasd.db');
    const token = 'fixed-admin-token-for-tests';
    const a = run(['--db', db], { IOASD_ADMIN_TOKEN: token });
    const url = /API (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(await ready(a))![1]!;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${url}/v1/principals/admin`, { method: 'PATCH', headers, body: JSON.stringify({ clearances: ['tenant-a'] }) })).status).toBe(200);
    const ctx = ((await (await fetch(`${url}/v1/contexts`, { method: 'POST', headers, body: '{}' })).json()) as { id: string }).id;
    const bound = await fetch(`${url}/v1/devices/0000:02:01.0/bind`, { method: 'POST', headers, body: JSON.stringify({ contextId: ctx }) });
    expect(bound.status).toBe(200);
    await stop(a);
    const files = readdirSync(dir).sort();

    const b = run(['--db', db, '--policy', 'group-first'], { IOASD_ADMIN_TOKEN: token });
    expect(await b.exited).toBe(1);
    expect(oneLine(b)).toBe(
      `ioasd: --policy group-first refused (the policy cannot change while anything is held): the device-first policy holds device 0000:02:01.0 (bound (device-first), context ${ctx}); delete the context holding them (ioasctl contexts delete ${ctx}), or start without --policy to keep device-first`,
    );
    expect(readdirSync(dir).sort()).toEqual(files);
  });
});
