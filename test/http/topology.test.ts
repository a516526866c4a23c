import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(() => t.close());

const small = {
  iommu: {
    pageSizes: ['0x1000'],
    aperture: { start: '0x0', last: '0xffffffff' },
    reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }],
    pasidBits: 0,
    features: { nesting: false, pasid: false, dirtyTracking: false },
  },
  groups: [{ id: 1, kind: 'iommu', devices: ['0000:01:00.0'] }, { id: 2, kind: 'iommu' }],
  devices: [
    { id: '0000:01:00.0', kind: 'pci', groupId: 1, driver: 'vfio-pci', label: 'tenant-a' },
    { id: '0000:02:00.0', kind: 'pci', groupId: 2, driver: 'nvme' },
  ],
};

describe('/v1/topology', () => {
  it('exports a document that imports back unchanged', async () => {
    const exported = (await t.admin({ url: '/v1/topology' })).json();
    expect(exported.devices).toHaveLength(16);
    const put = await t.admin({ method: 'PUT', url: '/v1/topology', payload: exported });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual(exported);
  });

  it('replaces the whole inventory', async () => {
    const res = await t.admin({ method: 'PUT', url: '/v1/topology', payload: small });
    expect(res.statusCode).toBe(200);
    expect(res.json().groups).toEqual([
      { id: 1, kind: 'iommu', type: null, warnings: [], devices: ['0000:01:00.0'] },
      { id: 2, kind: 'iommu', type: null, warnings: [], devices: ['0000:02:00.0'] },
    ]);
    expect((await t.admin({ url: '/v1/system' })).json().iommu.aperture.last).toBe('0xffffffff');
    expectProblem(await t.admin({ url: '/v1/devices/0000:06:00.0' }), 404, 'ENOENT');
  });

  it('merges by id with ?mode=merge, keeping the rest and the iommu when none is given', async () => {
    const res = await t.admin({
      method: 'PUT',
      url: '/v1/topology?mode=merge',
      payload: {
        groups: [{ id: 12, kind: 'iommu' }],
        devices: [
          { id: '0000:07:00.0', kind: 'pci', groupId: 12, driver: 'vfio-pci' },
          { id: '0000:01:00.1', kind: 'pci', groupId: 1, driver: 'vfio-pci', label: 'tenant-a' },
        ],
      },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.devices).toHaveLength(17);
    expect(body.iommu.pageSizes).toEqual(['0x1000', '0x200000', '0x40000000']);
    expect((await t.admin({ url: '/v1/groups/1' })).json().viable).toBe(true);
  });

  it('refuses a broken document whole with 400, listing every problem, and imports nothing', async () => {
    const before = (await t.admin({ url: '/v1/topology' })).json();
    const broken = {
      ...small,
      groups: [...small.groups, { id: 3, kind: 'iommu', devices: ['0000:01:00.0'] }, { id: 4, kind: 'iommu' }],
      devices: [
        ...small.devices,
        { id: '0000:02:00.0', kind: 'pci', groupId: 2 }, // named twice
        { id: '0000:03:00.0', kind: 'vf', groupId: 3, parentId: '0000:0f:00.0' }, // missing parent
        { id: '0000:05:00.0', kind: 'pci', groupId: 9 }, // missing group
      ],
    };
    const res = await t.admin({ method: 'PUT', url: '/v1/topology', payload: broken });
    const body = expectProblem(res, 400, 'EINVAL');
    const messages = (body.problems as { message: string }[]).map((p) => p.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        'device 0000:02:00.0 is named twice',
        'device 0000:03:00.0 names missing parent 0000:0f:00.0',
        'device 0000:05:00.0 names missing group 9',
        'device 0000:01:00.0 is put in two groups (1 and 3)',
        'group 4 has no device',
      ]),
    );
    expect((await t.admin({ url: '/v1/topology' })).json()).toEqual(before);
  });

  it('refuses a malformed document listing every failing field', async () => {
    const res = await t.admin({
      method: 'PUT',
      url: '/v1/topology',
      payload: { groups: [{ id: -1, kind: 'iommu' }], devices: [{ id: '0000:01:00.0', kind: 'gpu', groupId: 1 }], iommu: { pageSizes: [] } },
    });
    const body = expectProblem(res, 400, 'EINVAL');
    const paths = (body.problems as { path: string }[]).map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['body.groups[0].id', 'body.devices[0].kind', 'body.iommu.pageSizes', 'body.iommu.aperture']));
  });

  it('answers EOVERFLOW for an address past 2^64-1', async () => {
    const res = await t.admin({
      method: 'PUT',
      url: '/v1/topology',
      payload: { ...small, iommu: { ...small.iommu, aperture: { start: '0x0', last: '0x10000000000000000' } } },
    });
    expectProblem(res, 400, 'EOVERFLOW');
  });

  it('keeps u64 values exact through import and export', async () => {
    const payload = { ...small, iommu: { ...small.iommu, aperture: { start: '4096', last: '0xffffffffffffffff' } } };
    const res = await t.admin({ method: 'PUT', url: '/v1/topology', payload });
    expect(res.json().iommu.aperture).toEqual({ start: '0x1000', last: '0xffffffffffffffff' });
  });
});
