import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

const GPU = '0000:01:00.0';
const AUDIO = '0000:01:00.1';

describe('groups', () => {
  it('lists the demo groups with derived viability and blockers', async () => {
    const groups = (await t.admin({ url: '/v1/groups' })).json() as { id: number; kind: string; viable: boolean; devices: string[] }[];
    expect(groups.map((g) => g.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 101]);
    const viable = Object.fromEntries(groups.map((g) => [g.id, g.viable]));
    expect(viable).toEqual({ 1: false, 2: false, 3: true, 4: true, 5: true, 6: false, 7: false, 8: false, 9: true, 10: false, 11: true, 100: true, 101: true });
    const chipset = (await t.admin({ url: '/v1/groups/8' })).json();
    expect(chipset.blockers).toEqual([
      { kind: 'device', id: '0000:00:14.0', reason: 'bound to kernel driver xhci_hcd' },
      { kind: 'device', id: '0000:00:17.0', reason: 'bound to kernel driver ahci' },
    ]);
    expect(chipset.owner).toBeNull();
  });

  it('makes the GPU+audio group viable only when both functions leave their kernel drivers', async () => {
    const viable = async () => (await t.admin({ url: '/v1/groups/1' })).json().viable as boolean;
    const setDriver = (id: string, driver: string) => t.admin({ method: 'PUT', url: `/v1/devices/${id}/driver`, payload: { driver } });
    expect(await viable()).toBe(false);
    expect((await setDriver(AUDIO, 'vfio-pci')).json().driver).toBe('vfio-pci');
    expect(await viable()).toBe(true);
    await setDriver(GPU, 'none');
    expect(await viable()).toBe(true);
    await setDriver(GPU, 'nvidia');
    const group = (await t.admin({ url: '/v1/groups/1' })).json();
    expect(group.viable).toBe(false);
    expect(group.blockers).toEqual([{ kind: 'device', id: GPU, reason: 'bound to kernel driver nvidia' }]);
  });

  it('answers ENOENT for an unknown group and EINVAL for a malformed id', async () => {
    expectProblem(await t.admin({ url: '/v1/groups/77' }), 404, 'ENOENT');
    expectProblem(await t.admin({ url: '/v1/groups/abc' }), 400, 'EINVAL');
  });
});

describe('devices', () => {
  it('filters by group, driver, kind and free', async () => {
    const ids = async (q: string) => ((await t.admin({ url: `/v1/devices${q}` })).json() as { id: string }[]).map((d) => d.id);
    expect(await ids('?group=1')).toEqual([GPU, AUDIO]);
    expect(await ids('?driver=vfio_mdev')).toEqual(['c0ffee00-0000-4000-8000-000000000001', 'c0ffee00-0000-4000-8000-000000000002']);
    expect(await ids('?kind=vf&driver=vfio-pci')).toEqual(['0000:02:01.0', '0000:02:01.1', '0000:02:01.2']);
    expect((await ids('?free=true')).length).toBe(16);
    expect(await ids('?free=false')).toEqual([]);
    expectProblem(await t.admin({ url: '/v1/devices?kind=gpu' }), 400, 'EINVAL');
  });

  it('gets one device with every field', async () => {
    const dsa = (await t.admin({ url: '/v1/devices/0000:06:00.0' })).json();
    expect(dsa).toEqual({
      id: '0000:06:00.0', kind: 'pci', groupId: 11, parentId: null, driver: 'vfio-pci', label: 'shared', pasidCapable: true,
      resetGroup: null, vendor: '0x8086', device: '0x0b25', class: '0x088000', description: 'data streaming accelerator (PASID)', reservedRegions: [],
      warnings: [],
    });
    expectProblem(await t.admin({ url: '/v1/devices/0000:99:00.0' }), 404, 'ENOENT');
  });

  it('hot-plugs a device into a new group and into an existing one', async () => {
    const res = await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: '0000:07:00.0', kind: 'pci', groupId: 12, driver: 'vfio-pci', label: 'tenant-b' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ id: '0000:07:00.0', groupId: 12, driver: 'vfio-pci', label: 'tenant-b', reservedRegions: [] });
    expect((await t.admin({ url: '/v1/groups/12' })).json()).toMatchObject({ kind: 'iommu', devices: ['0000:07:00.0'], viable: true });
    const vf = await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: '0000:02:01.4', kind: 'vf', groupId: 13, parentId: '0000:02:00.0' } });
    expect(vf.json()).toMatchObject({ driver: 'none', parentId: '0000:02:00.0' });
    const mdev = await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: 'mdev-3', kind: 'mdev', groupId: 100, parentId: '0000:05:00.0' } });
    expect(mdev.statusCode).toBe(201);
    expect((await t.admin({ url: '/v1/groups/100' })).json().devices).toEqual(['c0ffee00-0000-4000-8000-000000000001', 'mdev-3']);
  });

  it('refuses a bad hot-plug and writes nothing', async () => {
    const before = (await t.admin({ url: '/v1/topology' })).json();
    const add = (payload: object) => t.admin({ method: 'POST', url: '/v1/devices', payload });
    expectProblem(await add({ id: GPU, kind: 'pci', groupId: 1 }), 409, 'EEXIST');
    expectProblem(await add({ id: '0000:07:00.0', kind: 'pci', groupId: 100 }), 400, 'EINVAL'); // hardware into a virtual group
    expectProblem(await add({ id: 'mdev-9', kind: 'mdev', groupId: 120, parentId: '0000:ff:00.0' }), 400, 'EINVAL'); // no parent
    expectProblem(await add({ id: 'not-a-pci-address', kind: 'pci', groupId: 30 }), 400, 'EINVAL');
    expectProblem(await add({ id: '0000:07:00.0', kind: 'pci' }), 400, 'EINVAL'); // schema: groupId missing
    expect((await t.admin({ url: '/v1/topology' })).json()).toEqual(before);
  });

  it('hot-unplugs a PF together with its VFs, dropping groups left empty', async () => {
    const del = await t.admin({ method: 'DELETE', url: '/v1/devices/0000:02:00.0' });
    expect(del.statusCode).toBe(204);
    for (const id of ['0000:02:00.0', '0000:02:01.0', '0000:02:01.3']) expectProblem(await t.admin({ url: `/v1/devices/${id}` }), 404, 'ENOENT');
    for (const g of [2, 3, 4, 5, 6]) expectProblem(await t.admin({ url: `/v1/groups/${g}` }), 404, 'ENOENT');
    // One function of a two-function group leaves; the group stays.
    await t.admin({ method: 'DELETE', url: `/v1/devices/${AUDIO}` });
    expect((await t.admin({ url: '/v1/groups/1' })).json()).toMatchObject({ devices: [GPU], viable: true });
    expectProblem(await t.admin({ method: 'DELETE', url: `/v1/devices/${AUDIO}` }), 404, 'ENOENT');
  });

  it('refuses a malformed driver name and an unknown device', async () => {
    expectProblem(await t.admin({ method: 'PUT', url: `/v1/devices/${GPU}/driver`, payload: { driver: 'bad driver!' } }), 400, 'EINVAL');
    expectProblem(await t.admin({ method: 'PUT', url: `/v1/devices/${GPU}/driver`, payload: {} }), 400, 'EINVAL');
    expectProblem(await t.admin({ method: 'PUT', url: '/v1/devices/0000:99:00.0/driver', payload: { driver: 'vfio-pci' } }), 404, 'ENOENT');
  });
});

describe('system', () => {
  it('reports policy, iommu capabilities and counts', async () => {
    const sys = (await t.admin({ url: '/v1/system' })).json();
    expect(sys).toMatchObject({
      policy: 'device-first',
      iommu: {
        pageSizes: ['0x1000', '0x200000', '0x40000000'],
        aperture: { start: '0x0', last: '0xffffffffffff' },
        reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }],
        pasidBits: 20,
        features: { nesting: true, pasid: true, dirtyTracking: true },
      },
      counts: { groups: 13, devices: 16, principals: 1 },
    });
  });

  it('starts with the policy it is given', async () => {
    const g = await testApp({ policy: 'group-first' });
    expect((await g.admin({ url: '/v1/system' })).json().policy).toBe('group-first');
    await g.close();
  });
});
