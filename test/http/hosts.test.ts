import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IoasdError } from '../../src/core/errors.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import type { HostSpec } from '../fixtures/sysfs/build.js';
import { amd, desktop, iommuOff } from '../fixtures/sysfs/hosts.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

// A real host over HTTP: warnings on groups, devices and the system; devices without a group
// refused; POST /v1/topology/rescan (admin) with and without dry run.

const trees = fixtureTrees();
afterAll(() => trees.remove());

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** An app started on `spec`, whose rescan reads whichever tree `host.use()` last pointed it at. */
async function hostApp(spec: HostSpec, policy: 'device-first' | 'group-first' = 'device-first') {
  let current = trees.fresh(spec);
  const scan = () => readSysfsTopology(current.sys, { proc: current.proc });
  t = await testApp({ topology: scan(), hostScan: scan, policy });
  return {
    t,
    /** The host now looks like `next` (a tree generated from it). */
    use(next: HostSpec) {
      current = trees.fresh(next);
    },
  };
}

const NVME = '0000:02:00.0';
const GPU = '0000:01:00.0';
const AUDIO = '0000:01:00.1';

function withoutDevice(spec: HostSpec, addr: string): HostSpec {
  return { ...spec, functions: spec.functions.filter((f) => f.addr !== addr) };
}

function withDriver(spec: HostSpec, addr: string, driver: string): HostSpec {
  return { ...spec, functions: spec.functions.map((f) => (f.addr === addr ? { ...f, driver } : f)) };
}

describe('warnings over HTTP', () => {
  it('shows them on the group, on each device of the group, and summed up in /v1/system', async () => {
    const { t } = await hostApp(desktop);
    const group = (await t.admin({ url: '/v1/groups/1' })).json();
    expect(group).toMatchObject({ id: 1, type: 'DMA-FQ', devices: ['0000:00:01.0', GPU, AUDIO], viable: false });
    expect(group.warnings.map((w: { code: string; deviceId: string }) => `${w.code}@${w.deviceId}`)).toEqual(['no-acs@0000:00:01.0', `multifunction-no-acs@${GPU}`]);
    expect(group.reservedRegions).toEqual([{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }]);
    expect((await t.admin({ url: `/v1/devices/${AUDIO}` })).json().warnings).toEqual(group.warnings);
    const listed = (await t.admin({ url: '/v1/devices?group=1' })).json() as { warnings: unknown[] }[];
    expect(listed.map((d) => d.warnings)).toEqual([group.warnings, group.warnings, group.warnings]);
    expect((await t.admin({ url: '/v1/groups/2' })).json().reservedRegions).toEqual([
      { start: '0x7b800000', last: '0x7fffffff', type: 'direct' },
      { start: '0xfee00000', last: '0xfeefffff', type: 'msi' },
    ]);

    const system = (await t.admin({ url: '/v1/system' })).json();
    expect(system.warnings).toEqual({
      groups: [1, 3, 7],
      byCode: { 'no-acs': 1, 'multifunction-no-acs': 3, 'acs-override': 0, 'identity-domain': 0, 'no-iommu': 0 },
      devicesWithoutGroup: [],
      host: [],
    });
    expect(system.iommu).toMatchObject({ pageSizes: ['0x1000', '0x200000', '0x40000000'], aperture: { start: '0x0', last: '0x7fffffffff' }, pasidBits: 0 });
  });

  it('exports them in the topology document and imports them back', async () => {
    const { t } = await hostApp(amd);
    const exported = (await t.admin({ url: '/v1/topology' })).json();
    expect(exported.groups.find((g: { id: number }) => g.id === 5)).toMatchObject({ type: 'identity', warnings: [{ code: 'identity-domain' }] });
    expect(exported.devices.find((d: { id: string }) => d.id === '0000:00:00.2')).toMatchObject({ groupId: null, warnings: [{ code: 'no-iommu' }] });
    const put = await t.admin({ method: 'PUT', url: '/v1/topology', payload: exported });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual(exported);
  });
});

describe('a device without an IOMMU group', () => {
  it('is listed, flagged no-iommu, and refused for bind with ENODEV naming the reason', async () => {
    const { t } = await hostApp(amd);
    const dev = (await t.admin({ url: '/v1/devices/0000:00:00.2' })).json();
    expect(dev).toMatchObject({ groupId: null, kind: 'pci', warnings: [{ code: 'no-iommu', deviceId: '0000:00:00.2' }] });
    expect((await t.admin({ url: '/v1/system' })).json().warnings).toMatchObject({ devicesWithoutGroup: ['0000:00:00.2'], byCode: { 'no-iommu': 1, 'identity-domain': 1 } });

    const ctx = (await t.admin({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
    const refused = expectProblem(await t.admin({ method: 'POST', url: '/v1/devices/0000:00:00.2/bind', payload: { contextId: ctx } }), 404, 'ENODEV');
    expect(refused.blockers).toEqual([{ kind: 'device', id: '0000:00:00.2', reason: 'no-iommu: not behind an IOMMU (no IOMMU group)' }]);
    expect(refused.detail).toContain('no IOMMU group');
  });

  it('can be hot-plugged as such (a PCI function only: a virtual device always has a group)', async () => {
    t = await testApp();
    const res = await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: '0000:0f:00.0', kind: 'pci', groupId: null, driver: 'none' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ groupId: null, warnings: [{ code: 'no-iommu', deviceId: '0000:0f:00.0' }] });
    const mdev = expectProblem(await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: 'm-1', kind: 'mdev', groupId: null, parentId: '0000:05:00.0' } }), 400, 'EINVAL');
    expect(mdev.detail).toContain('mdev device m-1 needs a group');
    expect((await t.admin({ method: 'DELETE', url: '/v1/devices/0000:0f:00.0' })).statusCode).toBe(204);
  });

  it('is refused for a group-first device open too', async () => {
    const { t } = await hostApp(amd, 'group-first');
    const ctx = (await t.admin({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
    const ioas = (await t.admin({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx } })).json().id as number;
    expect((await t.admin({ method: 'POST', url: '/v1/groups/2/open', payload: { contextId: ctx } })).statusCode).toBe(200);
    expect((await t.admin({ method: 'PUT', url: '/v1/groups/2/container', payload: { ioasId: ioas } })).statusCode).toBe(409); // mlx5_core is kernel-DMA
    await t.admin({ method: 'POST', url: '/v1/groups/2/close' });
    await t.admin({ method: 'PUT', url: '/v1/devices/0000:41:00.0/driver', payload: { driver: 'vfio-pci' } });
    await t.admin({ method: 'POST', url: '/v1/groups/2/open', payload: { contextId: ctx } });
    expect((await t.admin({ method: 'PUT', url: '/v1/groups/2/container', payload: { ioasId: ioas } })).statusCode).toBe(200);
    const refused = expectProblem(await t.admin({ method: 'POST', url: '/v1/groups/2/devices/0000:00:00.2/open' }), 404, 'ENODEV');
    expect(refused.blockers).toEqual([{ kind: 'device', id: '0000:00:00.2', reason: 'no-iommu: not behind an IOMMU (no IOMMU group)' }]);
  });
});

describe('POST /v1/topology/rescan', () => {
  it('is 422 EOPNOTSUPP without --sysfs, admin only, and refuses unknown query parameters', async () => {
    t = await testApp();
    const res = expectProblem(await t.admin({ method: 'POST', url: '/v1/topology/rescan' }), 422, 'EOPNOTSUPP');
    expect(res.detail).toContain('--sysfs');
    const alice = await t.user('alice');
    expectProblem(await t.as(alice.token, { method: 'POST', url: '/v1/topology/rescan' }), 403, 'EACCES');
    expectProblem(await t.admin({ method: 'POST', url: '/v1/topology/rescan?dryrun=true' }), 400, 'EINVAL');
  });

  it('takes over what changed on the host; the dry run answers the same effects and changes nothing', async () => {
    const host = await hostApp(desktop);
    const { t } = host;
    // On the host: the NVMe disk is gone, the audio function moved to vfio-pci, a NIC appeared below 00:1d.0's sibling port.
    const next: HostSpec = {
      ...withDriver(withoutDevice(desktop, NVME), AUDIO, 'vfio-pci'),
      groups: [...desktop.groups!.filter((g) => g.id !== 6), { id: 8, type: 'DMA-FQ', regions: [[0xfee00000n, 0xfeefffffn, 'msi']] }],
      functions: [
        ...withDriver(withoutDevice(desktop, NVME), AUDIO, 'vfio-pci').functions,
        { addr: '0000:03:00.0', under: '0000:00:1d.0', vendor: 0x8086, device: 0x125c, class: 0x020000, driver: 'igc', group: 8, pcie: 'endpoint' },
      ],
    };
    host.use(next);
    const before = (await t.admin({ url: '/v1/topology' })).json();
    const auditBefore = (await t.admin({ url: '/v1/audit?limit=1000' })).json().length;
    const seq = t.app.ioasd.store.eventBounds().newest;

    const dry = await t.admin({ method: 'POST', url: '/v1/topology/rescan?dryRun=true' });
    expect(dry.statusCode).toBe(200);
    const expected = [
      { kind: 'group-added', groupId: 8 },
      { kind: 'device-added', deviceId: '0000:03:00.0', groupId: 8, driver: 'igc' },
      // Worded as PUT /v1/devices/{id}/driver words it (core/inventory.ts driverChange).
      {
        kind: 'driver-changed',
        deviceId: AUDIO,
        from: 'snd_hda_intel',
        to: 'vfio-pci',
        description: 'the host loses Audio device [10de:10f8] (subsystem 10de:139f): snd_hda_intel lets go of it and it becomes assignable (vfio-pci)',
      },
      { kind: 'device-removed', deviceId: NVME },
      { kind: 'group-removed', groupId: 6 },
    ];
    expect(dry.json()).toEqual({ dryRun: true, effects: expected });
    expect((await t.admin({ url: '/v1/topology' })).json()).toEqual(before);
    expect((await t.admin({ url: '/v1/audit?limit=1000' })).json()).toHaveLength(auditBefore);
    expect(t.app.ioasd.store.eventBounds().newest).toBe(seq);

    const real = await t.admin({ method: 'POST', url: '/v1/topology/rescan' });
    expect(real.json()).toEqual({ dryRun: false, effects: expected });
    // The effects are the events the rescan committed (GET /v1/events delivers them).
    expect(t.app.ioasd.store.eventsAfter(seq, 100).map((e) => `${e.type} ${e.objectId}`)).toEqual([
      'group.added 8',
      'device.added 0000:03:00.0',
      `device.driver-changed ${AUDIO}`,
      `device.removed ${NVME}`,
      'group.removed 6',
    ]);
    expectProblem(await t.admin({ url: `/v1/devices/${NVME}` }), 404, 'ENOENT');
    expectProblem(await t.admin({ url: '/v1/groups/6' }), 404, 'ENOENT');
    expect((await t.admin({ url: '/v1/devices/0000:03:00.0' })).json()).toMatchObject({ groupId: 8, driver: 'igc', description: 'Ethernet controller [8086:125c]' });
    // Both functions of the GPU are now on vfio-pci: the group became viable.
    expect((await t.admin({ url: '/v1/groups/1' })).json()).toMatchObject({ viable: true, blockers: [] });
    const audit = (await t.admin({ url: '/v1/audit?limit=1000' })).json();
    expect(audit.at(-1)).toMatchObject({ action: 'topology.rescan', target: 'topology' });

    // Again: nothing left to do.
    expect((await t.admin({ method: 'POST', url: '/v1/topology/rescan' })).json()).toEqual({ dryRun: false, effects: [] });
  });

  it('keeps what only an admin knows (labels) across a rescan', async () => {
    const { t } = await hostApp(desktop);
    const exported = (await t.admin({ url: '/v1/topology' })).json();
    const nvme = { ...exported.devices.find((d: { id: string }) => d.id === NVME), label: 'tenant-a', description: 'your NVMe disk' };
    expect((await t.admin({ method: 'PUT', url: '/v1/topology?mode=merge', payload: { groups: [], devices: [nvme] } })).statusCode).toBe(200);
    expect((await t.admin({ method: 'POST', url: '/v1/topology/rescan' })).json()).toEqual({ dryRun: false, effects: [] });
    expect((await t.admin({ url: `/v1/devices/${NVME}` })).json()).toMatchObject({ label: 'tenant-a', description: 'your NVMe disk' });
  });

  it('refuses a vanished owned device EBUSY (a hot-unplug), the dry run with the same refusal, and changes nothing', async () => {
    const host = await hostApp(desktop);
    const { t } = host;
    await t.admin({ method: 'PUT', url: `/v1/devices/${NVME}/driver`, payload: { driver: 'vfio-pci' } });
    const alice = await t.user('alice');
    const ctx = (await t.as(alice.token, { method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
    expect((await t.as(alice.token, { method: 'POST', url: `/v1/devices/${NVME}/bind`, payload: { contextId: ctx } })).statusCode).toBe(200);
    const before = (await t.admin({ url: '/v1/topology' })).json();

    host.use(withoutDevice(desktop, NVME));
    for (const url of ['/v1/topology/rescan?dryRun=true', '/v1/topology/rescan']) {
      const body = expectProblem(await t.admin({ method: 'POST', url }), 409, 'EBUSY');
      expect(body.blockers).toEqual([{ kind: 'device', id: NVME, reason: 'group 6 is owned', owner: ctx }]);
    }
    // The host also moved the disk back to nvme while it is owned: the kernel would have refused that probe.
    host.use(desktop);
    const driver = expectProblem(await t.admin({ method: 'POST', url: '/v1/topology/rescan' }), 409, 'EBUSY');
    expect(driver.detail).toContain('DMA-capable kernel driver');
    expect((await t.admin({ url: '/v1/topology' })).json()).toEqual(before);
  });

  it('answers a retry with the same Idempotency-Key from the first rescan, reading the host no more', async () => {
    const host = await hostApp(desktop);
    const { t } = host;
    host.use(withoutDevice(desktop, NVME));
    const call = () => t.admin({ method: 'POST', url: '/v1/topology/rescan', headers: { 'idempotency-key': 'rescan-1' } });
    const first = await call();
    expect(first.json()).toEqual({ dryRun: false, effects: [{ kind: 'device-removed', deviceId: NVME }, { kind: 'group-removed', groupId: 6 }] });
    host.use(desktop); // the disk is back on the host: a new rescan would add it
    const again = await call();
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expectProblem(await t.admin({ url: `/v1/devices/${NVME}` }), 404, 'ENOENT');
  });

  it('refuses a host that lost its IOMMU groups, naming the cause', async () => {
    const host = await hostApp(desktop);
    host.use({ ...iommuOff, name: 'off' });
    const body = expectProblem(await host.t.admin({ method: 'POST', url: '/v1/topology/rescan' }), 404, 'ENODEV');
    expect(body.detail).toContain('intel_iommu=on');
  });
});

describe('a restart with --sysfs on an existing database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ioasd-hosts-db-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes over what changed on the host like a rescan: labels kept, owned devices guarded', async () => {
    const db = join(dir, 'ioasd.db');
    const start = async (spec: HostSpec) => {
      const tree = trees.fresh(spec);
      const scan = () => readSysfsTopology(tree.sys, { proc: tree.proc });
      return testApp({ db, topology: scan(), hostScan: scan });
    };
    let app = await start(desktop);
    const exported = (await app.admin({ url: '/v1/topology' })).json();
    const gpu = { ...exported.devices.find((d: { id: string }) => d.id === GPU), label: 'tenant-a' };
    await app.admin({ method: 'PUT', url: '/v1/topology?mode=merge', payload: { groups: [], devices: [gpu] } });
    await app.admin({ method: 'PUT', url: `/v1/devices/${NVME}/driver`, payload: { driver: 'vfio-pci' } });
    const ctx = (await app.admin({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id as string;
    expect((await app.admin({ method: 'POST', url: `/v1/devices/${NVME}/bind`, payload: { contextId: ctx } })).statusCode).toBe(200);
    await app.close();

    // The audio function changed driver while ioasd was down: applied, label and binding kept.
    app = await start(withDriver(withDriver(desktop, NVME, 'vfio-pci'), AUDIO, 'vfio-pci'));
    expect((await app.admin({ url: `/v1/devices/${GPU}` })).json().label).toBe('tenant-a');
    expect((await app.admin({ url: `/v1/devices/${AUDIO}` })).json().driver).toBe('vfio-pci');
    expect((await app.admin({ url: '/v1/groups/6' })).json().owner).toBe(ctx);
    await app.close();

    // The owned disk vanished while ioasd was down: refused at start, as a hot-unplug would be.
    const refused = await start(withoutDevice(desktop, NVME)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IoasdError);
    expect((refused as IoasdError).errno).toBe('EBUSY');
  });
});
