import { afterEach, describe, expect, it } from 'vitest';
import type { Explanation } from '../../src/http/ui/why.js';
import { ADMIN, cli, Server } from './harness.js';

/** `ioasctl why DEVICE` on the demo inventory, for each kind of blocker, against a real server. */
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** The explanation of src/http/ui/why.js (its types: why.d.ts), as `--json` prints it. */
type Report = Explanation;

async function why(s: Server, token: string, device: string, ...extra: string[]) {
  const human = await cli(['why', device, ...extra], { IOASD_URL: s.url, IOASD_TOKEN: token });
  const json = await cli(['--json', 'why', device, ...extra], { IOASD_URL: s.url, IOASD_TOKEN: token });
  expect(json.code).toBe(human.code);
  return { code: human.code, text: human.stdout, report: JSON.parse(json.stdout) as Report };
}

describe('ioasctl why', () => {
  it('a free device: yes, the command to take it, and the temporary context it tried in is gone again', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a', 'shared']);
    const r = await why(server, alice.token, '0000:02:01.0');
    expect(r.code).toBe(0);
    expect(r.text).toContain('yes: alice can take 0000:02:01.0 now:');
    expect(r.text).toContain('ioasctl devices bind 0000:02:01.0 --context <your context>');
    expect(r.text).toMatch(/it would: group-claimed groupId=3 devices=0000:02:01\.0/);
    expect(r.report).toMatchObject({ verdict: 'yes', temporaryContext: true, blockers: [], dryRun: { status: 200 } });
    expect((await server.api(alice.token, 'GET', '/v1/contexts')).body).toEqual([]);

    // With a context of its own, that one is used and named; once bound, the device is already yours.
    const ctx = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    expect((await why(server, alice.token, '0000:02:01.0')).text).toContain(`ioasctl devices bind 0000:02:01.0 --context ${ctx}`);
    expect((await server.api(alice.token, 'POST', '/v1/devices/0000:02:01.0/bind', { contextId: ctx })).status).toBe(200);
    const mine = await why(server, alice.token, '0000:02:01.0');
    expect(mine.code).toBe(0);
    expect(mine.report).toMatchObject({ verdict: 'yours', holdsGroup: true });
    expect(mine.text).toContain(`yes: you hold 0000:02:01.0 already: its group is held by your context ${ctx}.`);
  });

  it('the GPU beside its HDMI audio on snd_hda_intel: the kernel-driver blocker and the admin fix, then yes', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a']);
    const r = await why(server, alice.token, '0000:01:00.0');
    expect(r.code).toBe(5);
    expect(r.text).toContain('no: alice cannot take 0000:01:00.0 now. 1 blocker:');
    expect(r.text).toContain('0000:01:00.1 (GPU HDMI audio), in the same group 1, is bound to the kernel driver snd_hda_intel');
    expect(r.text).toContain('fix: an admin moves it off the kernel driver: ioasctl devices set-driver 0000:01:00.1 vfio-pci');
    expect(r.text).toContain('checked: dry run of POST /v1/devices/0000:01:00.0/bind?dryRun=true in a temporary context (deleted again): 409 EPERM');
    expect(r.report.blockers).toMatchObject([{ rule: 'kernel-driver', kind: 'device', id: '0000:01:00.1', errno: 'EPERM' }]);

    const fix = await cli(['devices', 'set-driver', '0000:01:00.1', 'vfio-pci'], { IOASD_URL: server.url, IOASD_TOKEN: ADMIN });
    expect(fix.code).toBe(0);
    expect((await why(server, alice.token, '0000:01:00.0')).code).toBe(0);
  });

  it('under group-first: the open would pass, the container claim would not; the same blocker', async () => {
    server = await Server.start({ policy: 'group-first' });
    const alice = await server.user('alice', ['tenant-a']);
    const r = await why(server, alice.token, '0000:01:00.0');
    expect(r.code).toBe(5);
    expect(r.report).toMatchObject({ verdict: 'no', dryRun: { request: 'POST /v1/groups/1/open?dryRun=true', status: 200 } });
    expect(r.report.blockers.map((b) => [b.rule, b.id])).toEqual([['kernel-driver', '0000:01:00.1']]);
    // Holding the group open is not holding its DMA: the claim still needs the audio function off its driver.
    const ctx = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    expect((await server.api(alice.token, 'POST', '/v1/groups/1/open', { contextId: ctx })).status).toBe(200);
    const held = await why(server, alice.token, '0000:01:00.0');
    expect(held.code).toBe(5);
    expect(held.report).toMatchObject({ verdict: 'no', holdsGroup: true, contextId: ctx });
    expect(held.text).toContain(`Your context ${ctx} holds group 1, but cannot claim it yet. 1 blocker:`);
    const free = await why(server, alice.token, '0000:02:01.0');
    expect(free.code).toBe(0);
    expect(free.report.next).toEqual([`ioasctl groups open 3 --context ${ctx}`, 'ioasctl groups set-container 3 <ioas of that context>', 'ioasctl groups open-device 3 0000:02:01.0']);
  });

  it('a device another principal owns: the owner shows as "other", and what would release it', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a', 'shared']);
    const bob = await server.user('bob', ['tenant-b', 'shared']);
    const bctx = ((await server.api(bob.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    expect((await server.api(bob.token, 'POST', '/v1/devices/0000:02:01.2/bind', { contextId: bctx })).status).toBe(200);
    const r = await why(server, alice.token, '0000:02:01.2');
    expect(r.code).toBe(5);
    expect(r.text).toContain("group 5 is owned by another principal's context");
    expect(r.text).toContain('fix: wait until its owner releases it');
    expect(r.text).not.toContain(bctx);
    expect(r.report.blockers).toMatchObject([{ rule: 'owner', kind: 'group', id: '5' }]);
    // An admin sees the context and gets the command that ends it.
    const admin = await cli(['why', '0000:02:01.2'], { IOASD_URL: server.url, IOASD_TOKEN: ADMIN });
    expect(admin.stdout).toContain(`end it as admin: ioasctl contexts delete ${bctx}`);
  });

  it('a label the caller lacks: the clearance blocker, exit 4, and the admin command that grants it', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a', 'shared']);
    const r = await why(server, alice.token, '0000:02:01.1');
    expect(r.code).toBe(4);
    expect(r.text).toContain('0000:02:01.1 (Ethernet adaptive VF 1) carries the label tenant-b, and alice is not cleared for it (clearances: shared, tenant-a)');
    const grant = `ioasctl principals update ${alice.id} --clearances shared,tenant-a,tenant-b`;
    expect(r.text).toContain(`fix: an admin grants the clearance: ${grant}`);
    expect(r.report.blockers).toMatchObject([{ rule: 'clearance', id: '0000:02:01.1', errno: 'EACCES' }]);
    // The fix, run as printed, works.
    const fix = await cli(grant.split(' ').slice(1), { IOASD_URL: server.url, IOASD_TOKEN: ADMIN });
    expect(fix.code).toBe(0);
    expect((await why(server, alice.token, '0000:02:01.1')).code).toBe(0);
  });

  it('a group with two labels and a kernel driver: every blocker at once, in the order the server checks them', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a']);
    expect((await server.api(ADMIN, 'PUT', '/v1/devices/0000:04:00.1/driver', { driver: 'ixgbe' })).status).toBe(200);
    const r = await why(server, alice.token, '0000:04:00.0');
    expect(r.report.blockers.map((b) => [b.rule, b.id])).toEqual([
      ['clearance', '0000:04:00.1'],
      ['kernel-driver', '0000:04:00.1'],
    ]);
    // The first blocker is the one the server refuses with, so the exit status is the dry run's.
    expect(r.report.dryRun).toMatchObject({ status: 403, errno: 'EACCES' });
    expect(r.report.errno).toBe('EACCES');
    expect(r.code).toBe(4);
    expect(r.text).toContain('2 blockers:');
  });

  it('--context naming another of your contexts than the one holding the group: use that one', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a', 'shared']);
    const holder = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    const spare = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    expect((await server.api(alice.token, 'POST', '/v1/devices/0000:02:01.0/bind', { contextId: holder })).status).toBe(200);
    // Without --context the holding context is the one asked about: yours.
    expect((await why(server, alice.token, '0000:02:01.0')).report).toMatchObject({ verdict: 'yours', contextId: holder });
    const r = await why(server, alice.token, '0000:02:01.0', '--context', spare);
    expect(r.code).toBe(5);
    expect(r.report).toMatchObject({ verdict: 'no', contextId: spare, holdsGroup: false, blockers: [{ rule: 'owner', kind: 'group', id: '3' }] });
    expect(r.text).toContain(`group 3 is already held by your context ${holder}`);
    expect(r.text).toContain(`fix: use that context (ioasctl why 0000:02:01.0 --context ${holder}), or release the group there (ioasctl contexts delete ${holder}`);
  });

  it('a parent whose virtual device is in use: its own kernel driver and the child in use, with the page\'s rule', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['tenant-a']);
    const ctx = ((await server.api(alice.token, 'POST', '/v1/contexts', {})).body as { id: string }).id;
    const mdev = 'c0ffee00-0000-4000-8000-000000000001';
    expect((await server.api(alice.token, 'POST', `/v1/devices/${mdev}/bind`, { contextId: ctx })).status).toBe(200);
    const r = await why(server, alice.token, '0000:05:00.0');
    expect(r.code).toBe(5);
    expect(r.report.blockers.map((b) => [b.rule, b.id])).toEqual([
      ['kernel-driver', '0000:05:00.0'],
      ['children-in-use', mdev],
    ]);
    expect(r.text).toContain('0000:05:00.0 (GPU that parents mediated devices) itself is bound to the kernel driver i915');
    expect(r.text).toContain(`fix: wait until ${mdev} is released.`);
  });

  it('an unknown device: one sentence, and the status of ENOENT', async () => {
    server = await Server.start();
    const alice = await server.user('alice', ['shared']);
    const r = await why(server, alice.token, '0000:ff:00.0');
    expect(r.code).toBe(3);
    expect(r.text).toMatch(/^There is no device 0000:ff:00\.0 \(.+\)\.\n$/);
    expect(r.report).toMatchObject({ verdict: 'unknown', errno: 'ENOENT', blockers: [] });
    // A token the server refuses is a refusal of its own, as for any command.
    const refused = await cli(['why', '0000:01:00.0'], { IOASD_URL: server.url, IOASD_TOKEN: 'not-a-token-at-all-0123456789' });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('401');
  });
});
