import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { explain, gatherFacts, toText, type Api, type Explanation } from '../../src/http/ui/why.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { HOSTS } from '../fixtures/sysfs/hosts.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';

/**
 * The why panel's explanation, computed from the API alone, against a real app: its verdict must
 * agree with what the server then does when the caller really takes the device, and every blocker the
 * server names must be among those explained.
 */

const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
});

async function start(policy?: 'group-first' | 'device-first'): Promise<TestApp> {
  const t = await testApp({ leaseCheckMs: 0, ...(policy ? { policy } : {}) });
  apps.push(t);
  return t;
}

/** why.js's `api` over app.inject, as `token`. */
function apiAs(t: TestApp, token: string): Api {
  return async (method, path, body) => {
    const res = await t.as(token, { method: method as 'GET', url: path, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  };
}

async function why(t: TestApp, token: string, deviceId: string): Promise<Explanation> {
  return explain(await gatherFacts(apiAs(t, token), deviceId));
}

async function context(t: TestApp, token: string): Promise<string> {
  const res = await t.as(token, { method: 'POST', url: '/v1/contexts', payload: {} });
  expect(res.statusCode).toBe(201);
  return (res.json() as { id: string }).id;
}

const DEVICES = [
  '0000:01:00.0', '0000:01:00.1', '0000:02:00.0', '0000:02:01.0', '0000:02:01.1', '0000:02:01.2', '0000:02:01.3', '0000:03:00.0',
  '0000:00:14.0', '0000:00:17.0', '0000:04:00.0', '0000:04:00.1', '0000:05:00.0', 'c0ffee00-0000-4000-8000-000000000001',
  'c0ffee00-0000-4000-8000-000000000002', '0000:06:00.0',
];

/**
 * Really takes the device as the caller would (device-first: bind; group-first: open the group, put
 * it in a container, open the device) and undoes it. Answers the first refusal, or null.
 */
async function take(t: TestApp, token: string, ctx: string, policy: string, deviceId: string): Promise<{ errno: string; blockers: { id: string }[] } | null> {
  const call = async (method: string, url: string, payload?: object) => {
    const res = await t.as(token, { method: method as 'POST', url, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  };
  const refused = (r: { status: number; body: { errno: string; blockers?: { id: string }[] } }) => ({ errno: r.body.errno, blockers: r.body.blockers ?? [] });
  if (policy === 'device-first') {
    const r = await call('POST', `/v1/devices/${deviceId}/bind`, { contextId: ctx });
    if (r.status !== 200) return refused(r);
    expect((await call('POST', `/v1/devices/${deviceId}/unbind`)).status).toBe(204);
    return null;
  }
  const group = (await call('GET', `/v1/devices/${deviceId}`)).body.groupId as number;
  // A group the context already has open goes on from there.
  if ((await call('GET', `/v1/groups/${group}`)).body.owner !== ctx) {
    const open = await call('POST', `/v1/groups/${group}/open`, { contextId: ctx });
    if (open.status !== 200) return refused(open);
  }
  try {
    const ioas = await call('POST', '/v1/ioas', { contextId: ctx });
    const joined = await call('PUT', `/v1/groups/${group}/container`, { ioasId: ioas.body.id });
    if (joined.status !== 200) return refused(joined);
    const opened = await call('POST', `/v1/groups/${group}/devices/${deviceId}/open`);
    if (opened.status !== 200) return refused(opened);
    return null;
  } finally {
    expect((await call('POST', `/v1/groups/${group}/close`)).status).toBe(204);
  }
}

/**
 * The errno the explanation expects the server to refuse with: its first blocker's, which is the
 * server's own as the blockers come in the server's order. One deliberate difference: a device
 * someone else has bound is EINVAL ("already bound") to the server before any other rule; the
 * explanation lists the rules in the way instead, the owner among them (EPERM: it can be waited for).
 */
function firstErrno(x: Explanation): string | null {
  return x.dryRun?.errno === 'EINVAL' && x.blockers.some((b) => b.rule === 'owner') ? 'EINVAL' : x.errno;
}

/** The explanation agrees with the real attempt, device by device. */
async function agreeOnEveryDevice(t: TestApp, token: string, policy: 'device-first' | 'group-first', devices = DEVICES): Promise<Record<string, string>> {
  const ctx = await context(t, token);
  const verdicts: Record<string, string> = {};
  for (const id of devices) {
    const x = await why(t, token, id);
    verdicts[id] = x.verdict;
    // Group-first takes a device through its group: one without a group has nothing to try.
    if (policy === 'group-first' && x.groupId === null) {
      expect(x.verdict).toBe('no');
      continue;
    }
    const outcome = await take(t, token, ctx, policy, id);
    if (x.verdict === 'yes') expect(outcome, `${id}: ${toText(x)}`).toBeNull();
    else if (x.verdict === 'no') {
      expect(outcome, `${id}: explained as blocked, but taking it worked\n${toText(x)}`).not.toBeNull();
      const subjects = new Set(x.blockers.map((b) => b.id));
      for (const b of outcome!.blockers) expect(subjects, `${id}: the server names ${b.id}\n${toText(x)}`).toContain(b.id);
      expect(firstErrno(x), `${id}: the server refuses with ${outcome!.errno}\n${toText(x)}`).toBe(outcome!.errno);
    }
  }
  return verdicts;
}

describe('why: the explanation agrees with the server', () => {
  it('device-first, demo inventory: can take exactly what a bind accepts', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a', 'shared']);
    const verdicts = await agreeOnEveryDevice(t, alice.token, 'device-first');
    expect(verdicts['0000:02:01.0']).toBe('yes');
    expect(verdicts['0000:01:00.0']).toBe('no');
    expect(verdicts['0000:04:00.0']).toBe('no');
  });

  it('group-first: can take exactly what open + container + device open accept', async () => {
    const t = await start('group-first');
    const alice = await t.user('alice', ['tenant-a', 'shared']);
    const verdicts = await agreeOnEveryDevice(t, alice.token, 'group-first');
    expect(verdicts['0000:02:01.0']).toBe('yes');
    // Opening the GPU's group works; its audio function on snd_hda_intel refuses the container.
    expect(verdicts['0000:01:00.0']).toBe('no');
  });

  it('agrees on random states: other owners, driver changes, clearances, either policy', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('bind' as const), who: fc.constantFrom('bob', 'alice'), device: fc.constantFrom(...DEVICES) }),
      fc.record({ kind: fc.constant('driver' as const), device: fc.constantFrom(...DEVICES.filter((d) => d.startsWith('0000'))), driver: fc.constantFrom('vfio-pci', 'none', 'snd_hda_intel', 'i915') }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('device-first' as const, 'group-first' as const),
        fc.subarray(['tenant-a', 'tenant-b', 'shared']),
        fc.array(op, { maxLength: 6 }),
        fc.constantFrom(...DEVICES),
        async (policy, clearances, ops, target) => {
          const t = await start(policy);
          const alice = await t.user('alice', clearances);
          const bob = await t.user('bob', ['tenant-a', 'tenant-b', 'shared']);
          const tokens = { alice: alice.token, bob: bob.token };
          const ctxs = { alice: await context(t, alice.token), bob: await context(t, bob.token) };
          for (const o of ops) {
            if (o.kind === 'driver') await t.admin({ method: 'PUT', url: `/v1/devices/${o.device}/driver`, payload: { driver: o.driver } });
            else if (policy === 'device-first') await t.as(tokens[o.who], { method: 'POST', url: `/v1/devices/${o.device}/bind`, payload: { contextId: ctxs[o.who] } });
            else {
              const g = (await t.admin({ method: 'GET', url: `/v1/devices/${o.device}` })).json().groupId as number;
              await t.as(tokens[o.who], { method: 'POST', url: `/v1/groups/${g}/open`, payload: { contextId: ctxs[o.who] } });
            }
          }
          const x = await why(t, alice.token, target);
          if (x.verdict === 'yours') return;
          const outcome = await take(t, alice.token, ctxs.alice, policy, target);
          if (x.verdict === 'yes') expect(outcome, toText(x)).toBeNull();
          else {
            expect(outcome, toText(x)).not.toBeNull();
            const subjects = new Set(x.blockers.map((b) => b.id));
            for (const b of outcome!.blockers) expect(subjects, toText(x)).toContain(b.id);
            expect(firstErrno(x), `the server refuses with ${outcome!.errno}\n${toText(x)}`).toBe(outcome!.errno);
          }
          await t.close();
          apps.splice(apps.indexOf(t), 1);
        },
      ),
      { numRuns: Number(process.env.WHY_RUNS ?? 25) },
    );
  });
});

describe('why: what it says', () => {
  it('names the GPU audio function on its kernel driver, the fix, and the refused dry run', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a']);
    const ctx = await context(t, alice.token);
    const x = await why(t, alice.token, '0000:01:00.0');
    expect(x.verdict).toBe('no');
    expect(x.blockers).toEqual([
      {
        rule: 'kernel-driver',
        kind: 'device',
        id: '0000:01:00.1',
        errno: 'EPERM',
        text: '0000:01:00.1 (GPU HDMI audio), in the same group 1, is bound to the kernel driver snd_hda_intel, which does DMA for the host: no user may own group 1 beside it.',
        fix: 'an admin moves it off the kernel driver: PUT /v1/devices/0000:01:00.1/driver {"driver":"vfio-pci"} (add ?dryRun=true first: it says what the host loses; on a real host: driverctl set-override 0000:01:00.1 vfio-pci).',
      },
    ]);
    expect(x.dryRun).toMatchObject({ request: 'POST /v1/devices/0000:01:00.0/bind?dryRun=true', contextId: ctx, status: 409, ok: false, errno: 'EPERM' });
    expect(toText(x)).toContain('\n  1. 0000:01:00.1 (GPU HDMI audio), in the same group 1, is bound to the kernel driver snd_hda_intel');
    expect(toText(x)).toContain(`checked: dry run of POST /v1/devices/0000:01:00.0/bind?dryRun=true in context ${ctx}: 409 EPERM: group 1 is not viable`);
    // The dry run changed nothing.
    expect((await t.admin({ method: 'GET', url: '/v1/groups/1' })).json().owner).toBeNull();
  });

  it('lists every label the caller lacks in the group, where the server stops at the first rule', async () => {
    const t = await start();
    const alice = await t.user('alice', []);
    await context(t, alice.token);
    const x = await why(t, alice.token, '0000:01:00.0');
    expect(x.blockers.map((b) => [b.rule, b.id])).toEqual([
      ['clearance', '0000:01:00.0'],
      ['clearance', '0000:01:00.1'],
      ['kernel-driver', '0000:01:00.1'],
    ]);
    expect(x.blockers[1]!.text).toContain('in the same group 1,');
    expect(x.blockers[0]!.fix).toContain('"tenant-a"');
    expect(x.dryRun?.errno).toBe('EACCES');
  });

  it("another principal's hold shows as other; the caller's own is 'yours'", async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a']);
    const bob = await t.user('bob', ['tenant-a']);
    const ctxA = await context(t, alice.token);
    const ctxB = await context(t, bob.token);
    expect((await t.as(bob.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: ctxB } })).statusCode).toBe(200);
    const x = await why(t, alice.token, '0000:02:01.0');
    expect(x.verdict).toBe('no');
    expect(x.blockers).toHaveLength(1);
    expect(x.blockers[0]).toMatchObject({ rule: 'owner', kind: 'group', id: '3', errno: 'EPERM' });
    expect(x.blockers[0]!.text).toContain("another principal's context");
    expect(toText(x)).not.toContain(ctxB);

    expect(ctxA).not.toBe(ctxB);
    const mine = await why(t, bob.token, '0000:02:01.0');
    expect(mine.verdict).toBe('yours');
    expect(mine.summary).toBe(`0000:02:01.0 is already yours (context ${ctxB}).`);
  });

  it('without a context it says so and still explains from the views', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a', 'shared']);
    const ok = await why(t, alice.token, '0000:02:01.0');
    expect(ok.verdict).toBe('yes');
    expect(ok.dryRun).toBeNull();
    expect(ok.notes.join(' ')).toContain('You have no context');
    expect((await why(t, alice.token, '0000:01:00.0')).blockers.map((b) => b.id)).toEqual(['0000:01:00.1']);
  });

  it('a virtual device: its parent off its kernel driver, and a parent whose virtual devices are in use', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a', 'tenant-b']);
    const ctx = await context(t, alice.token);
    const mdev = 'c0ffee00-0000-4000-8000-000000000001';
    expect((await t.as(alice.token, { method: 'POST', url: `/v1/devices/${mdev}/bind`, payload: { contextId: ctx } })).statusCode).toBe(200);
    const parent = await why(t, alice.token, '0000:05:00.0');
    expect(parent.blockers.map((b) => [b.rule, b.id])).toEqual([
      ['kernel-driver', '0000:05:00.0'],
      ['children-in-use', mdev],
    ]);
    expect((await t.as(alice.token, { method: 'POST', url: `/v1/devices/${mdev}/unbind` })).statusCode).toBe(204);
    expect((await t.admin({ method: 'PUT', url: '/v1/devices/0000:05:00.0/driver', payload: { driver: 'vfio-pci' } })).statusCode).toBe(200);
    const child = await why(t, alice.token, mdev);
    expect(child.blockers.map((b) => [b.rule, b.id])).toEqual([['parent-driver', '0000:05:00.0']]);
    expect(child.dryRun?.errno).toBe('EPERM');
  });

  it('an unknown device is unknown', async () => {
    const t = await start();
    const alice = await t.user('alice', ['shared']);
    const gone = await why(t, alice.token, '0000:ff:00.0');
    expect(gone.verdict).toBe('unknown');
    expect(gone.summary).toContain('There is no device 0000:ff:00.0');
  });
});

/** Rules and answers `ioasctl why` had before it used this module, kept in it. */
describe('why: the rules the command line knew', () => {
  it('the group held by another of your contexts than the one asked about: use that one, or release it there', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a']);
    const holder = await context(t, alice.token);
    const spare = await context(t, alice.token);
    expect((await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: holder } })).statusCode).toBe(200);
    const facts = await gatherFacts(apiAs(t, alice.token), '0000:02:01.0', { contextId: spare });
    const x = explain(facts);
    expect(x).toMatchObject({ verdict: 'no', contextId: spare, holdsGroup: false, errno: 'EPERM' });
    expect(x.blockers).toEqual([
      {
        rule: 'owner',
        kind: 'group',
        id: '3',
        errno: 'EPERM',
        text: `group 3 is already held by your context ${holder}: a group has one owner at a time.`,
        fix: `use that context, or release the group there (DELETE /v1/contexts/${holder} releases everything it holds).`,
      },
    ]);
    expect(explain(facts, { commands: 'ioasctl' }).blockers[0]!.fix).toBe(
      `use that context (ioasctl why 0000:02:01.0 --context ${holder}), or release the group there (ioasctl contexts delete ${holder} releases everything it holds).`,
    );
    // Asked without a context, the holding one is chosen: it is yours.
    expect((await why(t, alice.token, '0000:02:01.0')).verdict).toBe('yours');
  });

  it("an admin sees the holding context, and the fix ends it; others are told to wait", async () => {
    const t = await start();
    const bob = await t.user('bob', ['tenant-a']);
    const alice = await t.user('alice', ['tenant-a']);
    const ctxB = await context(t, bob.token);
    await context(t, alice.token);
    expect((await t.as(bob.token, { method: 'POST', url: '/v1/devices/0000:02:01.0/bind', payload: { contextId: ctxB } })).statusCode).toBe(200);
    const asAdmin = (await why(t, ADMIN_TOKEN, '0000:02:01.0')).blockers.find((b) => b.rule === 'owner')!;
    expect(asAdmin.text).toBe(`group 3 is owned by context ${ctxB}: a group has one DMA owner at a time, and every device in it goes with it.`);
    expect(asAdmin.fix).toBe(`wait until it is released, or end it as admin: DELETE /v1/contexts/${ctxB} (add ?dryRun=true first: it lists what that context loses).`);
    const asAlice = (await why(t, alice.token, '0000:02:01.0')).blockers;
    expect(asAlice).toHaveLength(1);
    expect(asAlice[0]!.fix).toMatch(/^wait until its owner releases it .*or ask an admin to end that context\.$/);
    // The fix, run as given, frees the group.
    expect((await t.admin({ method: 'DELETE', url: `/v1/contexts/${ctxB}` })).statusCode).toBe(204);
    expect((await why(t, alice.token, '0000:02:01.0')).verdict).toBe('yes');
  });

  it('a temporary context for the dry run when the caller has none, deleted again; commands name no context', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a']);
    const facts = await gatherFacts(apiAs(t, alice.token), '0000:02:01.0', { temporaryContext: true });
    expect(facts.temporaryContext).toBe(true);
    expect((await t.as(alice.token, { method: 'GET', url: '/v1/contexts' })).json()).toEqual([]);
    const x = explain(facts, { commands: 'ioasctl' });
    expect(x).toMatchObject({ verdict: 'yes', temporaryContext: true, dryRun: { ok: true, contextId: facts.context!.id } });
    expect(x.next).toEqual(['ioasctl devices bind 0000:02:01.0 --context <your context>']);
    expect(toText(x)).toContain('in a temporary context (deleted again): 200: would succeed');
    // A caller with a context of its own gets no temporary one.
    const ctx = await context(t, alice.token);
    expect((await gatherFacts(apiAs(t, alice.token), '0000:02:01.0', { temporaryContext: true })).context).toMatchObject({ id: ctx });
  });

  it('the next steps, as requests or as commands, under either policy; each works as given', async () => {
    const t = await start('group-first');
    const alice = await t.user('alice', ['tenant-a']);
    const ctx = await context(t, alice.token);
    const facts = await gatherFacts(apiAs(t, alice.token), '0000:02:01.0');
    expect(explain(facts).next).toEqual([
      `POST /v1/groups/3/open {"contextId":"${ctx}"}`,
      'PUT /v1/groups/3/container {"ioasId": <an ioas of that context>}',
      'POST /v1/groups/3/devices/0000:02:01.0/open',
    ]);
    expect(explain(facts, { commands: 'ioasctl' }).next).toEqual([
      `ioasctl groups open 3 --context ${ctx}`,
      'ioasctl groups set-container 3 <ioas of that context>',
      'ioasctl groups open-device 3 0000:02:01.0',
    ]);
    expect(await take(t, alice.token, ctx, 'group-first', '0000:02:01.0')).toBeNull();

    const d = await start();
    const bob = await d.user('bob', ['tenant-a']);
    const bctx = await context(d, bob.token);
    expect((await why(d, bob.token, '0000:02:01.0')).next).toEqual([`POST /v1/devices/0000:02:01.0/bind {"contextId":"${bctx}"}`]);
  });

  it('device-first: a group your context holds through another device is not this device bound; binding it is next', async () => {
    const t = await start();
    const alice = await t.user('alice', ['tenant-a', 'tenant-b']);
    const ctx = await context(t, alice.token);
    expect((await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:04:00.0/bind', payload: { contextId: ctx } })).statusCode).toBe(200);
    const x = await why(t, alice.token, '0000:04:00.1');
    expect(x).toMatchObject({ verdict: 'yes', holdsGroup: true, contextId: ctx, blockers: [] });
    expect(x.notes).toContain(`Your context ${ctx} already holds group 9.`);
    expect((await t.as(alice.token, { method: 'POST', url: '/v1/devices/0000:04:00.1/bind', payload: { contextId: ctx } })).statusCode).toBe(200);
    expect((await why(t, alice.token, '0000:04:00.1')).verdict).toBe('yours');
  });

  it('group-first: a device without an IOMMU group has no group to open, so nothing is dry-run and no context made', async () => {
    const trees = fixtureTrees();
    try {
      const { sys, proc } = trees.host('amd');
      const t = await testApp({ leaseCheckMs: 0, policy: 'group-first', topology: readSysfsTopology(sys, { proc }) });
      apps.push(t);
      const alice = await t.user('alice', []);
      const x = explain(await gatherFacts(apiAs(t, alice.token), '0000:00:00.2', { temporaryContext: true }), { commands: 'ioasctl' });
      expect(x).toMatchObject({ verdict: 'no', errno: 'ENODEV', dryRun: null, temporaryContext: false, notes: [] });
      expect(x.blockers.map((b) => b.rule)).toEqual(['no-iommu-group']);
      expect((await t.admin({ method: 'GET', url: '/v1/contexts' })).json()).toEqual([]);
    } finally {
      trees.remove();
    }
  });
});

describe('why on real hosts (the sysfs fixtures)', () => {
  const trees = fixtureTrees();
  afterAll(() => trees.remove());

  async function hostApp(name: string, policy: 'device-first' | 'group-first'): Promise<TestApp> {
    const { sys, proc } = trees.host(name);
    const t = await testApp({ leaseCheckMs: 0, policy, topology: readSysfsTopology(sys, { proc }) });
    apps.push(t);
    return t;
  }

  for (const host of HOSTS.filter((h) => h.name !== 'iommu-off')) {
    for (const policy of ['device-first', 'group-first'] as const) {
      it(`${host.name}, ${policy}: agrees with the server on every device`, async () => {
        const t = await hostApp(host.name, policy);
        // sysfs carries no labels: clearances do not matter here.
        const alice = await t.user('alice', []);
        const ids = ((await t.admin({ method: 'GET', url: '/v1/devices' })).json() as { id: string }[]).map((d) => d.id);
        expect(ids.length).toBeGreaterThan(0);
        await agreeOnEveryDevice(t, alice.token, policy, ids);
      });
    }
  }

  it('a function the firmware leaves out of every IOMMU group: never assignable, and why', async () => {
    const t = await hostApp('amd', 'device-first');
    const alice = await t.user('alice', []);
    await context(t, alice.token);
    const x = await why(t, alice.token, '0000:00:00.2');
    expect(x.verdict).toBe('no');
    expect(x.blockers.map((b) => [b.rule, b.id])).toEqual([['no-iommu-group', '0000:00:00.2']]);
    expect(x.blockers[0]!.fix).toContain('amd_iommu=on');
    expect(x.dryRun).toMatchObject({ status: 404, errno: 'ENODEV' });
    expect(x.warnings).toEqual([expect.objectContaining({ code: 'no-iommu', subject: '0000:00:00.2' })]);
    expect(x.warnings[0]!.advice).toContain('never be assigned');
  });

  it("passes on the host's warnings too, after the group's", async () => {
    const t = await hostApp('acs-override', 'device-first');
    const alice = await t.user('alice', []);
    const ids = ((await t.admin({ method: 'GET', url: '/v1/devices' })).json() as { id: string }[]).map((d) => d.id);
    const x = await why(t, alice.token, ids[0]!);
    const host = x.warnings.filter((w) => w.subject === 'host');
    expect(host).toEqual([expect.objectContaining({ code: 'acs-override', subject: 'host' })]);
    expect(host[0]!.detail).toContain('pcie_acs_override=downstream,multifunction');
    expect(host[0]!.advice).toContain('boot without pcie_acs_override');
    expect(x.warnings.at(-1)).toBe(host[0]);
    expect(toText(x)).toContain('\ncaution: acs-override (host): the kernel runs with pcie_acs_override');
  });

  it("passes on the group's isolation warnings, with advice", async () => {
    const t = await hostApp('server-switch', 'device-first');
    const alice = await t.user('alice', []);
    const groups = (await t.admin({ method: 'GET', url: '/v1/groups' })).json() as { id: number; devices: string[]; warnings: { code: string }[] }[];
    const warned = groups.find((g) => g.warnings.some((w) => w.code === 'no-acs'));
    expect(warned, 'the switch without ACS warns').toBeDefined();
    const x = await why(t, alice.token, warned!.devices[0]!);
    expect(x.warnings.map((w) => w.code)).toContain('no-acs');
    // A device shows its group's warnings too: each is listed once.
    expect(new Set(x.warnings.map((w) => `${w.code}|${w.subject}|${w.detail}`)).size).toBe(x.warnings.length);
    expect(toText(x)).toMatch(/\ncaution: no-acs [^\n]*\n {2}advice: Hand the whole group/);
  });
});
