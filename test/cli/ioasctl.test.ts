import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, cli, closedPort, Server } from './harness.js';

/**
 * ioasctl as an operator or a script uses it: the real binary in a child process against a real
 * server on 127.0.0.1, reading only the environment, flags and files it is given.
 */
let server: Server;
let alice: { id: string; token: string };
const as = (token: string) => ({ IOASD_URL: server.url, IOASD_TOKEN: token });

beforeAll(async () => {
  server = await Server.start();
  alice = await server.user('alice', ['tenant-a', 'shared'], { maxContexts: 3 });
});
afterAll(async () => server.close());

describe('ioasctl output', () => {
  it('prints a list as a table and, with --json, the very JSON the API answers', async () => {
    const table = await cli(['groups', 'list'], as(ADMIN));
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+KIND\s+DEVICES\s+VIABLE\s+OWNER\s+BLOCKERS/);
    expect(lines.find((l) => l.startsWith('1 '))).toMatch(/^1\s+iommu\s+0000:01:00\.0, 0000:01:00\.1\s+false\s+-\s+device 0000:01:00\.1: bound to kernel driver snd_hda_intel$/);
    expect(table.stdout.split('\n').every((l) => l === l.trimEnd())).toBe(true);

    const json = await cli(['--json', 'groups', 'list'], as(ADMIN));
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual((await server.api(ADMIN, 'GET', '/v1/groups')).body);
  });

  it('prints one object as field and value rows, nested fields dotted', async () => {
    const device = await cli(['devices', 'get', '0000:01:00.1'], as(alice.token));
    expect(device.code).toBe(0);
    expect(device.stdout).toMatch(/^driver\s+snd_hda_intel$/m);
    expect(device.stdout).toMatch(/^description\s+GPU HDMI audio$/m);
    const me = await cli(['whoami'], as(alice.token));
    expect(me.stdout).toMatch(/^clearances\s+shared, tenant-a$/m);
    expect(me.stdout).toMatch(/^quotas\.maxContexts\s+3$/m);
  });

  it('sends flags as the body, typed by the schema, and path arguments URL-encoded', async () => {
    const created = await cli(['--json', 'contexts', 'create', '--name', 'vm-1', '--lease-seconds', '600'], as(alice.token));
    expect(created.code).toBe(0);
    const ctx = JSON.parse(created.stdout) as { id: string; name: string; leaseSeconds: number };
    expect(ctx).toMatchObject({ name: 'vm-1', leaseSeconds: 600 });
    const ioas = JSON.parse((await cli(['--json', 'ioas', 'create', '--context', ctx.id], as(alice.token))).stdout) as { id: number };
    const mapped = await cli(['--json', 'ioas', 'map', String(ioas.id), '--iova', '0x100000', '--length', '4096', '--user-address', '0x7f0000000000', '--no-write'], as(alice.token));
    expect(mapped.code).toBe(0);
    expect(JSON.parse(mapped.stdout)).toEqual({ iova: '0x100000', length: '0x1000', userAddress: '0x7f0000000000', read: true, write: false });
    const bound = await cli(['devices', 'bind', 'c0ffee00-0000-4000-8000-000000000001', '--context', ctx.id], as(alice.token));
    expect(bound.code).toBe(0);
    expect(bound.stdout).toMatch(/^deviceId\s+c0ffee00-0000-4000-8000-000000000001$/m);
    const deleted = await cli(['contexts', 'delete', ctx.id], as(alice.token));
    expect(deleted).toMatchObject({ code: 0, stdout: `contexts delete ${ctx.id}: done\n` });
  });

  it('takes a body from a file or standard input, flags overriding its fields', async () => {
    const file = join(server.dir, 'ctx.json');
    writeFileSync(file, JSON.stringify({ name: 'from-file', leaseSeconds: 60 }));
    const fromFile = JSON.parse((await cli(['--json', 'contexts', 'create', '-f', file, '--lease-seconds', '120'], as(alice.token))).stdout) as Record<string, unknown>;
    expect(fromFile).toMatchObject({ name: 'from-file', leaseSeconds: 120 });
    const fromStdin = JSON.parse((await cli(['--json', 'contexts', 'create', '--file', '-'], as(alice.token), '{"name":"from-stdin"}')).stdout) as Record<string, unknown>;
    expect(fromStdin).toMatchObject({ name: 'from-stdin' });
    for (const c of [fromFile, fromStdin]) expect((await server.api(alice.token, 'DELETE', `/v1/contexts/${String(c.id)}`)).status).toBe(204);
  });
});

describe('ioasctl exit status by errno class', () => {
  it('2 for EINVAL, with each failing field; the problem document on stdout with --json', async () => {
    const ctx = (await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string };
    const ioas = (await server.api(alice.token, 'POST', '/v1/ioas', { contextId: ctx.id })).body as { id: number };
    const human = await cli(['ioas', 'map', String(ioas.id), '--length', 'lots', '--user-address', '0x0'], as(alice.token));
    expect(human.code).toBe(2);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/^refused: EINVAL 400 Bad Request|^refused: EINVAL 400/);
    expect(human.stderr).toMatch(/problem: body\.length: /);
    const json = await cli(['--json', 'ioas', 'map', String(ioas.id), '--length', 'lots', '--user-address', '0x0'], as(alice.token));
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 400, errno: 'EINVAL', problems: [{ path: 'body.length' }] });
    await server.api(alice.token, 'DELETE', `/v1/contexts/${ctx.id}`);
  });

  it('3 for ENOENT, 4 for EACCES (no token, a user on an admin route), 5 for EPERM, 6 for ENOSPC, 7 for EOPNOTSUPP', async () => {
    const missing = await cli(['devices', 'get', '0000:ff:00.0'], as(alice.token));
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('ENOENT');

    const noToken = await cli(['groups', 'list'], { IOASD_URL: server.url });
    expect(noToken.code).toBe(4);
    expect(noToken.stderr).toContain('no token: give --token, --token-file, IOASD_TOKEN or a config file');
    expect((await cli(['principals', 'list'], as(alice.token))).code).toBe(4);

    const contexts: string[] = [];
    for (let i = 0; i < 3; i++) contexts.push(((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id);
    const bind = await cli(['devices', 'bind', '0000:01:00.0', '--context', contexts[0]!], as(alice.token));
    expect(bind.code).toBe(5);
    expect(bind.stderr).toContain('blocker: device 0000:01:00.1: bound to kernel driver snd_hda_intel');

    const quota = await cli(['contexts', 'create'], as(alice.token));
    expect(quota.code).toBe(6);
    expect(quota.stderr).toContain('ENOSPC');

    const policy = await cli(['groups', 'open', '3', '--context', contexts[0]!], as(alice.token));
    expect(policy.code).toBe(7);
    expect(policy.stderr).toContain('EOPNOTSUPP');
    for (const c of contexts) await server.api(alice.token, 'DELETE', `/v1/contexts/${c}`);
  });

  it('1 for usage errors, 8 when the server cannot be reached, 0 for --help (which lists the exit statuses)', async () => {
    const unknown = await cli(['devices', 'frobnicate'], as(alice.token));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const missing = await cli(['devices', 'bind', '0000:02:01.0'], as(alice.token));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('missing --context');
    const badFile = await cli(['topology', 'import', join(server.dir, 'nope.json')], as(ADMIN));
    expect(badFile.code).toBe(1);
    expect(badFile.stderr).toContain('cannot read');

    const closed = await closedPort();
    const down = await cli(['groups', 'list'], { IOASD_URL: `http://127.0.0.1:${closed}`, IOASD_TOKEN: 'x' });
    expect(down.code).toBe(8);
    expect(down.stderr).toContain(`cannot reach http://127.0.0.1:${closed}: connection refused`);

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit status:');
    expect(help.stdout).toMatch(/^ {2}5 {2}EPERM, EBUSY, EEXIST, EADDRINUSE/m);
    expect((await cli([])).code).toBe(1);
  });
});

describe('ioasctl --dry-run and --idempotency-key', () => {
  it('--dry-run shows the effects and changes nothing; a refused one exits like the real call', async () => {
    const ctx = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    const preview = await cli(['devices', 'bind', '0000:02:01.0', '--context', ctx, '--dry-run'], as(alice.token));
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain('dry run: nothing was changed');
    expect(preview.stdout).toMatch(/group-claimed {2}groupId=3 devices=0000:02:01\.0 contextId=ctx-/);
    expect(((await server.api(alice.token, 'GET', '/v1/groups/3')).body as { owner: unknown }).owner).toBeNull();
    const json = await cli(['--json', 'devices', 'bind', '0000:02:01.0', '--context', ctx, '--dry-run'], as(alice.token));
    expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: true, effects: expect.arrayContaining([expect.objectContaining({ kind: 'group-claimed', groupId: 3 })]) });
    const refused = await cli(['devices', 'bind', '0000:01:00.0', '--context', ctx, '--dry-run'], as(alice.token));
    expect(refused.code).toBe(5);
    const driver = await cli(['devices', 'set-driver', '0000:01:00.1', 'vfio-pci', '--dry-run'], as(ADMIN));
    expect(driver.code).toBe(0);
    expect(driver.stdout).toMatch(/driver-changed {2}deviceId=0000:01:00\.1 from=snd_hda_intel to=vfio-pci/);
    expect(((await server.api(ADMIN, 'GET', '/v1/devices/0000:01:00.1')).body as { driver: string }).driver).toBe('snd_hda_intel');
    await server.api(alice.token, 'DELETE', `/v1/contexts/${ctx}`);
  });

  it('a retry with the same --idempotency-key gets the first answer, says so, and creates nothing more', async () => {
    const first = await cli(['--json', 'contexts', 'create', '--name', 'once', '--idempotency-key', 'create-once-1'], as(alice.token));
    const again = await cli(['--json', 'contexts', 'create', '--name', 'once', '--idempotency-key', 'create-once-1'], as(alice.token));
    expect(first.code).toBe(0);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(first.stdout));
    expect(first.stderr).toBe('');
    expect(again.stderr).toContain('replayed');
    const list = (await server.api(alice.token, 'GET', '/v1/contexts')).body as { name: string }[];
    expect(list.filter((c) => c.name === 'once')).toHaveLength(1);
    const reused = await cli(['contexts', 'create', '--name', 'other', '--idempotency-key', 'create-once-1'], as(alice.token));
    expect(reused.code).toBe(2);
    expect(reused.stderr).toContain('was used with a different request');
    await server.api(alice.token, 'DELETE', `/v1/contexts/${(JSON.parse(first.stdout) as { id: string }).id}`);
  });
});

describe('ioasctl server and token', () => {
  it('reads them from flags, the environment, or a config file, in that order', async () => {
    const dir = join(server.dir, 'cfg');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'admin.token'), ADMIN + '\n');
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ server: server.url, tokenFile: 'admin.token' }));
    const whoami = async (args: string[], env: Record<string, string>) => {
      const r = await cli(['--json', ...args, 'whoami'], env);
      return r.code === 0 ? (JSON.parse(r.stdout) as { name: string }).name : `exit ${r.code}: ${r.stderr}`;
    };
    expect(await whoami(['--config', config], {})).toBe('admin');
    expect(await whoami([], { IOASCTL_CONFIG: config })).toBe('admin');
    expect(await whoami(['--config', config], { IOASD_TOKEN: alice.token })).toBe('alice');
    expect(await whoami(['--config', config, '--token', alice.token], {})).toBe('alice');
    expect(await whoami(['--server', server.url, '--token-file', join(dir, 'admin.token')], { IOASD_URL: 'http://127.0.0.1:9', IOASD_TOKEN: alice.token })).toBe('admin');
    // The default file, under XDG_CONFIG_HOME, holding the token itself: readable by others is warned about.
    const home = join(server.dir, 'xdg');
    mkdirSync(join(home, 'ioasctl'), { recursive: true });
    writeFileSync(join(home, 'ioasctl', 'config.json'), JSON.stringify({ server: server.url, token: alice.token }));
    chmodSync(join(home, 'ioasctl', 'config.json'), 0o644);
    const r = await cli(['--json', 'whoami'], { XDG_CONFIG_HOME: home });
    expect((JSON.parse(r.stdout) as { name: string }).name).toBe('alice');
    expect(r.stderr).toContain('others can read it: chmod 600');
    const bad = await cli(['whoami'], { IOASCTL_CONFIG: join(dir, 'missing.json') });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('cannot read config file');
  });
});

describe('ioasctl system backup', () => {
  it('writes the live database to the file whole, and refuses a non-admin without leaving a file', async () => {
    const file = join(server.dir, 'copy.db');
    const ok = await cli(['system', 'backup', '-o', file], as(ADMIN));
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const bytes = readFileSync(file);
    expect(ok.stdout).toBe(`wrote ${bytes.length} bytes to ${file}\n`);
    expect(bytes.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    const copy = new Database(file, { readonly: true });
    const names = (copy.prepare('SELECT name FROM principals ORDER BY name').all() as { name: string }[]).map((r) => r.name);
    copy.close();
    expect(names).toContain('alice');
    expect(existsSync(`${file}.partial`)).toBe(false);

    const refused = await cli(['system', 'backup', '-o', join(server.dir, 'nope.db')], as(alice.token));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('EACCES');
    expect(existsSync(join(server.dir, 'nope.db'))).toBe(false);
    expect(existsSync(join(server.dir, 'nope.db.partial'))).toBe(false);
  });
});
