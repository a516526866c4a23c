import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyName } from '../../src/core/model.js';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

/**
 * The ownership scenarios of the 2021 VFIO/iommufd debate, through the HTTP API, under each policy
 * where they apply. Demo topology (SPEC 9): group 1 = GPU 0000:01:00.0 (vfio-pci) + HDMI audio
 * 0000:01:00.1 (snd_hda_intel), both tenant-a; group 9 = a card whose functions are tenant-a and
 * tenant-b; group 10 = the mdev parent on i915, with mdevs in virtual groups 100 (tenant-a) and
 * 101 (tenant-b); group 11 = a PASID-capable accelerator (shared).
 */
const GPU = '0000:01:00.0';
const AUDIO = '0000:01:00.1';
const MDEV1 = 'c0ffee00-0000-4000-8000-000000000001';
const MDEV2 = 'c0ffee00-0000-4000-8000-000000000002';
const DSA = '0000:06:00.0';

interface Tenant {
  id: string;
  token: string;
}

const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup(policy: PolicyName) {
  const t = await testApp({ policy, leaseCheckMs: 0 });
  apps.push(t);
  const alice = await t.user('alice', ['tenant-a', 'shared']);
  const bob = await t.user('bob', ['tenant-a', 'tenant-b', 'shared']);
  const call = (who: Tenant, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) =>
    t.as(who.token, { method, url, ...(payload ? { payload } : {}) });
  const context = async (who: Tenant) => (await call(who, 'POST', '/v1/contexts', {})).json().id as string;
  const ioas = async (who: Tenant, ctx: string) => (await call(who, 'POST', '/v1/ioas', { contextId: ctx })).json().id as number;
  const driver = (id: string, d: string) => t.admin({ method: 'PUT', url: `/v1/devices/${id}/driver`, payload: { driver: d } });
  return { t, alice, bob, call, context, ioas, driver };
}

describe('device-first', () => {
  it('a multi-function group wanted by two tenants: the first owns it whole, the second is refused EPERM naming "other"', async () => {
    const { alice, bob, call, context, driver } = await setup('device-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const b = await context(bob);
    expect((await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a })).statusCode).toBe(200);
    const refused = expectProblem(await call(bob, 'POST', `/v1/devices/${AUDIO}/bind`, { contextId: b }), 409, 'EPERM');
    expect(refused.blockers).toEqual([{ kind: 'group', id: '1', reason: 'owned by another context', owner: 'other' }]);
    // The same principal from another context is refused too, and sees its own context named.
    const a2 = await context(alice);
    const own = expectProblem(await call(alice, 'POST', `/v1/devices/${AUDIO}/bind`, { contextId: a2 }), 409, 'EPERM');
    expect(own.blockers).toEqual([{ kind: 'group', id: '1', reason: 'owned by another context', owner: a }]);
    expect((await call(alice, 'POST', `/v1/devices/${AUDIO}/bind`, { contextId: a })).statusCode).toBe(200);
    expect((await call(bob, 'GET', '/v1/groups/1')).json().owner).toBe('other');
    expect((await call(alice, 'GET', '/v1/groups/1')).json().owner).toBe(a);
    expectProblem(await call(bob, 'POST', `/v1/devices/${GPU}/bind`, { contextId: b }), 400, 'EINVAL'); // already bound
  });

  it('a group with a kernel driver still bound: EPERM naming the device and its driver; the admin cannot bring one back while owned', async () => {
    const { t, alice, call, context, driver } = await setup('device-first');
    const a = await context(alice);
    const refused = expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a }), 409, 'EPERM');
    expect(refused.blockers).toEqual([{ kind: 'device', id: AUDIO, reason: 'bound to kernel driver snd_hda_intel' }]);
    await driver(AUDIO, 'vfio-pci');
    await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a });
    const busy = expectProblem(await driver(AUDIO, 'snd_hda_intel'), 409, 'EBUSY');
    expect(busy.blockers).toEqual([{ kind: 'group', id: '1', reason: 'owned by a user', owner: a }]);
    expect((await driver(AUDIO, 'pci-stub')).statusCode).toBe(200); // no DMA: allowed
    expectProblem(await t.admin({ method: 'DELETE', url: `/v1/devices/${AUDIO}` }), 409, 'EBUSY');
  });

  it('a group whose devices carry different labels needs clearance for all of them (EACCES)', async () => {
    const { alice, bob, call, context } = await setup('device-first');
    const refused = expectProblem(await call(alice, 'POST', '/v1/devices/0000:04:00.0/bind', { contextId: await context(alice) }), 403, 'EACCES');
    expect(refused.blockers).toEqual([{ kind: 'device', id: '0000:04:00.1', reason: 'label tenant-b needs clearance' }]);
    expect((await call(bob, 'POST', '/v1/devices/0000:04:00.0/bind', { contextId: await context(bob) })).statusCode).toBe(200);
  });

  it('mdevs of one parent serve two tenants; the parent keeps its kernel driver', async () => {
    const { t, alice, bob, call, context, driver } = await setup('device-first');
    const carol = await t.user('carol', ['tenant-b']);
    expect((await call(alice, 'POST', `/v1/devices/${MDEV1}/bind`, { contextId: await context(alice) })).statusCode).toBe(200);
    expect((await call(carol, 'POST', `/v1/devices/${MDEV2}/bind`, { contextId: await context(carol) })).statusCode).toBe(200);
    const parentBusy = expectProblem(await driver('0000:05:00.0', 'vfio-pci'), 409, 'EBUSY');
    expect((parentBusy.blockers as { id: string }[]).map((b) => b.id)).toEqual([MDEV1, MDEV2]);
    // The parent itself is on a DMA-capable kernel driver: nobody can take its group.
    expectProblem(await call(bob, 'POST', '/v1/devices/0000:05:00.0/bind', { contextId: await context(bob) }), 409, 'EPERM');
  });

  it('mdevs of a parent that cannot isolate them share one virtual group: one owner for both', async () => {
    const { t, alice, bob, call, context } = await setup('device-first');
    await t.admin({ method: 'POST', url: '/v1/devices', payload: { id: '0000:07:00.0', kind: 'pci', groupId: 12, driver: 'mlx5_core' } });
    for (const id of ['sf-1', 'sf-2']) {
      await t.admin({ method: 'POST', url: '/v1/devices', payload: { id, kind: 'vdpa', groupId: 102, parentId: '0000:07:00.0' } });
    }
    const a = await context(alice);
    await call(alice, 'POST', '/v1/devices/sf-1/bind', { contextId: a });
    const refused = expectProblem(await call(bob, 'POST', '/v1/devices/sf-2/bind', { contextId: await context(bob) }), 409, 'EPERM');
    expect(refused.blockers).toEqual([{ kind: 'group', id: '102', reason: 'owned by another context', owner: 'other' }]);
    expect((await call(alice, 'POST', '/v1/devices/sf-2/bind', { contextId: a })).statusCode).toBe(200);
  });

  it('attach adds a domain: alignment and reserved regions arrive, conflicting mappings are EADDRINUSE', async () => {
    const { alice, call, context, ioas } = await setup('device-first');
    const a = await context(alice);
    const clash = await ioas(alice, a);
    await call(alice, 'POST', `/v1/ioas/${clash}/mappings`, { iova: '0xfee00000', length: '0x1000', userAddress: 0 });
    const dsa = await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    expect(dsa.statusCode).toBe(200);
    expectProblem(await call(alice, 'POST', `/v1/devices/${DSA}/attach`, { ptId: clash }), 409, 'EADDRINUSE');
    expect((await call(alice, 'GET', `/v1/ioas/${clash}/iova-ranges`)).json().alignment).toBe('0x1');
    const good = await ioas(alice, a);
    await call(alice, 'POST', `/v1/ioas/${good}/mappings`, { iova: '0x100000', length: '0x1000', userAddress: 0 });
    const attached = await call(alice, 'POST', `/v1/devices/${DSA}/attach`, { ptId: good });
    expect(attached.json()).toMatchObject({ deviceId: DSA, ioasId: good, pasids: [] });
    expect((await call(alice, 'GET', `/v1/ioas/${good}/iova-ranges`)).json()).toEqual({
      ranges: [{ start: '0x0', last: '0xfedfffff' }, { start: '0xfef00000', last: '0xffffffffffff' }],
      alignment: '0x1000',
    });
    expectProblem(await call(alice, 'POST', `/v1/ioas/${good}/mappings`, { iova: '0xfee00000', length: '0x1000', userAddress: 0 }), 400, 'EINVAL');
    expectProblem(await call(alice, 'POST', `/v1/ioas/${good}/mappings`, { iova: '0x200000', length: '0x800', userAddress: 0 }), 400, 'EINVAL');
    const inUse = expectProblem(await call(alice, 'DELETE', `/v1/ioas/${good}`), 409, 'EBUSY');
    const hwpts = (await call(alice, 'GET', '/v1/hwpts')).json();
    expect(inUse.blockers).toEqual([{ kind: 'hwpt', id: String(hwpts[0].id), reason: `uses ioas ${good}`, owner: a }]);
    expect(hwpts).toMatchObject([{ kind: 'paging', auto: true, ioasId: good, devices: [DSA] }]);
  });

  it('attach: not bound EINVAL, unknown or foreign pt ENOENT, attached EBUSY, replace, and the group shares one page table', async () => {
    const { alice, bob, call, context, ioas, driver } = await setup('device-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const [x, y] = [await ioas(alice, a), await ioas(alice, a)];
    const theirs = await ioas(bob, await context(bob));
    expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: x }), 400, 'EINVAL');
    await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${AUDIO}/bind`, { contextId: a });
    expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: 999 }), 404, 'ENOENT');
    expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: theirs }), 404, 'ENOENT');
    expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: x, replace: true }), 400, 'EINVAL');
    await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: x });
    const attached = expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: y }), 409, 'EBUSY');
    expect(attached.blockers).toEqual([{ kind: 'hwpt', id: expect.any(String), reason: `${GPU} attached`, owner: a }]);
    expectProblem(await call(alice, 'POST', `/v1/devices/${AUDIO}/attach`, { ptId: y }), 400, 'EINVAL');
    const shared = await call(alice, 'POST', `/v1/devices/${AUDIO}/attach`, { ptId: x });
    const gpuHwpt = (await call(alice, 'GET', '/v1/hwpts')).json()[0].id;
    expect(shared.json().hwptId).toBe(gpuHwpt);
    // replace to the same page table: a no-op
    expect((await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: x, replace: true })).json().hwptId).toBe(gpuHwpt);
    // a failed replace keeps the old attachment
    await call(alice, 'POST', `/v1/ioas/${y}/mappings`, { iova: '0xfee00000', length: '0x1000', userAddress: 0 });
    await call(alice, 'POST', `/v1/devices/${AUDIO}/detach`, {});
    expectProblem(await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: y, replace: true }), 409, 'EADDRINUSE');
    expect((await call(alice, 'GET', '/v1/hwpts')).json().map((h: { id: number; devices: string[] }) => [h.id, h.devices])).toEqual([[gpuHwpt, [GPU]]]);
    await call(alice, 'POST', `/v1/ioas/${y}/unmap`, { all: true });
    const moved = await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: y, replace: true });
    expect(moved.json().ioasId).toBe(y);
    // The automatic hwpt of x went with its last device.
    expect((await call(alice, 'GET', '/v1/hwpts')).json().map((h: { ioasId: number }) => h.ioasId)).toEqual([y]);
    expect((await call(alice, 'DELETE', `/v1/ioas/${x}`)).statusCode).toBe(204);
  });

  it('PASID attach on a capable device, refused on an incapable one', async () => {
    const { t, alice, call, context, ioas, driver } = await setup('device-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const space = await ioas(alice, a);
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a });
    const plain = (await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: space })).json().id;
    const pasidPt = (await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: space, pasid: true })).json().id;
    const attach = (dev: string, body: object) => call(alice, 'POST', `/v1/devices/${dev}/attach`, body);
    expectProblem(await attach(GPU, { ptId: pasidPt, pasid: 5 }), 400, 'EINVAL'); // not PASID-capable
    expectProblem(await attach(DSA, { ptId: pasidPt, pasid: 0 }), 400, 'EINVAL');
    expectProblem(await attach(DSA, { ptId: pasidPt, pasid: 2 ** 20 }), 400, 'EINVAL');
    expectProblem(await attach(DSA, { ptId: space, pasid: 5 }), 400, 'EINVAL'); // an ioas
    expectProblem(await attach(DSA, { ptId: plain, pasid: 5 }), 400, 'EINVAL'); // hwpt without pasid
    expectProblem(await attach(DSA, { ptId: pasidPt, pasid: 5, replace: true }), 400, 'EINVAL');
    expect((await attach(DSA, { ptId: pasidPt, pasid: 5 })).json().pasids).toEqual([{ pasid: 5, hwptId: pasidPt }]);
    expectProblem(await attach(DSA, { ptId: pasidPt, pasid: 5 }), 409, 'EBUSY');
    expectProblem(await call(alice, 'DELETE', `/v1/hwpts/${pasidPt}`), 409, 'EBUSY');
    expect((await call(alice, 'POST', `/v1/devices/${DSA}/detach`, { pasid: 9 })).statusCode).toBe(200); // no-op
    await t.admin({ method: 'PATCH', url: `/v1/principals/${alice.id}`, payload: { quotas: { maxPasids: 1 } } });
    expectProblem(await attach(DSA, { ptId: pasidPt, pasid: 6 }), 409, 'ENOSPC');
    expect((await call(alice, 'POST', `/v1/devices/${DSA}/detach`, { pasid: 5 })).json().pasids).toEqual([]);
    expect((await call(alice, 'DELETE', `/v1/hwpts/${pasidPt}`)).statusCode).toBe(204);
  });

  it('nested hwpts: a manual nestParent paging hwpt with stage-1 children, each held by what uses it', async () => {
    const { alice, call, context, ioas } = await setup('device-first');
    const a = await context(alice);
    const space = await ioas(alice, a);
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    const alloc = (body: object) => call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ...body });
    const plain = (await alloc({ ptId: space })).json().id;
    const parent = await alloc({ ioasId: space, nestParent: true });
    expect(parent.statusCode).toBe(201);
    const parentId = parent.json().id;
    expectProblem(await alloc({ parentId }), 400, 'EINVAL'); // no data
    expectProblem(await alloc({ parentId: plain, data: { s1: 1 } }), 400, 'EINVAL'); // not a nest parent
    expectProblem(await alloc({ ptId: 4242 }), 400, 'EINVAL');
    expectProblem(await call(alice, 'POST', '/v1/hwpts', { deviceId: GPU, ptId: space }), 404, 'ENOENT'); // not bound
    const nested = await alloc({ parentId, data: { stage1: 'vtd', pgd: '0x1000' } });
    expect(nested.json()).toMatchObject({ kind: 'nested', parentId, ioasId: space, data: { stage1: 'vtd', pgd: '0x1000' } });
    const nestedId = nested.json().id;
    expectProblem(await alloc({ parentId: nestedId, data: {} }), 400, 'EINVAL'); // nested of nested
    await call(alice, 'POST', `/v1/devices/${DSA}/attach`, { ptId: nestedId });
    expectProblem(await call(alice, 'DELETE', `/v1/hwpts/${parentId}`), 409, 'EBUSY');
    const busy = expectProblem(await call(alice, 'DELETE', `/v1/hwpts/${nestedId}`), 409, 'EBUSY');
    expect(busy.blockers).toEqual([{ kind: 'device', id: DSA, reason: 'attached', owner: a }]);
    await call(alice, 'POST', `/v1/devices/${DSA}/detach`, {});
    expect((await call(alice, 'DELETE', `/v1/hwpts/${nestedId}`)).statusCode).toBe(204);
    expect((await call(alice, 'DELETE', `/v1/hwpts/${parentId}`)).statusCode).toBe(204);
    // Manual hwpts are never chosen automatically and live until deleted.
    expect((await call(alice, 'GET', '/v1/hwpts')).json().map((h: { id: number }) => h.id)).toEqual([plain]);
    expectProblem(await call(alice, 'DELETE', `/v1/ioas/${space}`), 409, 'EBUSY');
  });

  it('virtual devices attach only to an ioas, through an access that needs page alignment', async () => {
    const { alice, call, context, ioas } = await setup('device-first');
    const a = await context(alice);
    const space = await ioas(alice, a);
    await call(alice, 'POST', `/v1/devices/${MDEV1}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    const hwpt = (await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: space })).json().id;
    expectProblem(await call(alice, 'POST', `/v1/devices/${MDEV1}/attach`, { ptId: hwpt }), 400, 'EINVAL');
    expectProblem(await call(alice, 'POST', '/v1/hwpts', { deviceId: MDEV1, ptId: space }), 400, 'EINVAL');
    const other = await ioas(alice, a);
    expect((await call(alice, 'POST', `/v1/devices/${MDEV1}/attach`, { ptId: other })).json()).toMatchObject({ hwptId: null, ioasId: other });
    expect((await call(alice, 'GET', `/v1/ioas/${other}/iova-ranges`)).json()).toEqual({ ranges: [{ start: '0x0', last: '0xffffffffffffffff' }], alignment: '0x1000' });
    expectProblem(await call(alice, 'DELETE', `/v1/ioas/${other}`), 409, 'EBUSY');
  });

  it('dirty tracking or nesting the iommu lacks: EOPNOTSUPP', async () => {
    const { t, alice, call, context, ioas } = await setup('device-first');
    const topo = (await t.admin({ url: '/v1/topology' })).json();
    topo.iommu.features = { nesting: false, pasid: true, dirtyTracking: false };
    expect((await t.admin({ method: 'PUT', url: '/v1/topology', payload: topo })).statusCode).toBe(200);
    const a = await context(alice);
    const space = await ioas(alice, a);
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    expectProblem(await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: space, dirtyTracking: true }), 422, 'EOPNOTSUPP');
    expectProblem(await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: space, nestParent: true }), 422, 'EOPNOTSUPP');
  });

  it('unbind detaches PASIDs and the device; the last unbind releases the group', async () => {
    const { alice, bob, call, context, ioas, driver } = await setup('device-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const space = await ioas(alice, a);
    await call(alice, 'POST', `/v1/devices/${GPU}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${AUDIO}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: space });
    expect((await call(alice, 'POST', `/v1/devices/${GPU}/unbind`)).statusCode).toBe(204);
    expect((await call(alice, 'GET', '/v1/hwpts')).json()).toEqual([]);
    expectProblem(await call(bob, 'POST', `/v1/devices/${GPU}/bind`, { contextId: await context(bob) }), 409, 'EPERM');
    await call(alice, 'POST', `/v1/devices/${AUDIO}/unbind`);
    expect((await call(bob, 'GET', '/v1/groups/1')).json().owner).toBeNull();
    expect((await call(bob, 'POST', `/v1/devices/${GPU}/bind`, { contextId: await context(bob) })).statusCode).toBe(200);
  });

  it('deleting a context releases a mix of everything, in one transaction', async () => {
    const { t, alice, call, context, ioas, driver } = await setup('device-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const [s1, s2] = [await ioas(alice, a), await ioas(alice, a)];
    await call(alice, 'POST', `/v1/ioas/${s1}/mappings`, { iova: '0x100000', length: '0x2000', userAddress: 0 });
    for (const d of [GPU, AUDIO, DSA, MDEV1]) await call(alice, 'POST', `/v1/devices/${d}/bind`, { contextId: a });
    await call(alice, 'POST', `/v1/devices/${GPU}/attach`, { ptId: s1 });
    await call(alice, 'POST', `/v1/devices/${MDEV1}/attach`, { ptId: s2 });
    const parent = (await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: s2, nestParent: true, pasid: true })).json().id;
    const nested = (await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, parentId: parent, data: { x: 1 }, pasid: true })).json().id;
    await call(alice, 'POST', `/v1/devices/${DSA}/attach`, { ptId: nested });
    await call(alice, 'POST', `/v1/devices/${DSA}/attach`, { ptId: parent, pasid: 3 });
    expect((await call(alice, 'DELETE', `/v1/contexts/${a}`)).statusCode).toBe(204);
    const db = t.app.ioasd.db;
    for (const table of ['bindings', 'pasid_attachments', 'hwpts', 'ioas', 'mappings', 'contexts']) {
      expect(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get(), table).toBe(0);
    }
    const groups = (await call(alice, 'GET', '/v1/groups')).json() as { owner: string | null }[];
    expect(groups.every((g) => g.owner === null)).toBe(true);
    // The ids came back: the next ioas takes the lowest.
    expect(await ioas(alice, await context(alice))).toBe(1);
  });
});

describe('group-first', () => {
  it('opens a group once (EBUSY for anyone else, naming "other"), containers it and opens devices', async () => {
    const { alice, bob, call, context, ioas, driver } = await setup('group-first');
    await driver(AUDIO, 'vfio-pci');
    const a = await context(alice);
    const container = await ioas(alice, a);
    expect((await call(alice, 'POST', '/v1/groups/1/open', { contextId: a })).json()).toEqual({ groupId: 1, contextId: a, containerId: null, openDevices: {} });
    const busy = expectProblem(await call(bob, 'POST', '/v1/groups/1/open', { contextId: await context(bob) }), 409, 'EBUSY');
    expect(busy.blockers).toEqual([{ kind: 'group', id: '1', reason: 'owned by another context', owner: 'other' }]);
    expectProblem(await call(alice, 'POST', '/v1/groups/1/open', { contextId: a }), 409, 'EBUSY');
    expectProblem(await call(alice, 'POST', `/v1/groups/1/devices/${GPU}/open`), 400, 'EINVAL'); // no container yet
    expect((await call(alice, 'PUT', '/v1/groups/1/container', { ioasId: container })).json().containerId).toBe(container);
    expectProblem(await call(alice, 'PUT', '/v1/groups/1/container', { ioasId: container }), 400, 'EINVAL'); // already in one
    expectProblem(await call(alice, 'POST', '/v1/groups/1/devices/0000:06:00.0/open'), 404, 'ENODEV');
    expect((await call(alice, 'POST', `/v1/groups/1/devices/${GPU}/open`)).json()).toEqual({ deviceId: GPU, opens: 1 });
    expect((await call(alice, 'POST', `/v1/groups/1/devices/${GPU}/open`)).json()).toEqual({ deviceId: GPU, opens: 2 });
    expectProblem(await call(bob, 'POST', `/v1/groups/1/devices/${GPU}/open`), 400, 'EINVAL'); // not open by bob
    expectProblem(await call(alice, 'DELETE', '/v1/groups/1/container'), 409, 'EBUSY');
    expectProblem(await call(alice, 'DELETE', `/v1/ioas/${container}`), 409, 'EBUSY');
  });

  it('a kernel driver in the group: open works, the container claim is EPERM naming it; while open, no new kernel driver', async () => {
    const { alice, call, context, ioas, driver } = await setup('group-first');
    const a = await context(alice);
    const container = await ioas(alice, a);
    await call(alice, 'POST', '/v1/groups/1/open', { contextId: a });
    const refused = expectProblem(await call(alice, 'PUT', '/v1/groups/1/container', { ioasId: container }), 409, 'EPERM');
    expect(refused.blockers).toEqual([{ kind: 'device', id: AUDIO, reason: 'bound to kernel driver snd_hda_intel' }]);
    // The group has a user owner from the open on: the admin may free the audio function, not bind
    // another DMA-capable kernel driver.
    expect((await driver(AUDIO, 'vfio-pci')).statusCode).toBe(200);
    expectProblem(await driver(GPU, 'nouveau'), 409, 'EBUSY');
    expect((await call(alice, 'PUT', '/v1/groups/1/container', { ioasId: container })).statusCode).toBe(200);
  });

  it('clearance for every label of the group: EACCES at open', async () => {
    const { alice, call, context } = await setup('group-first');
    expectProblem(await call(alice, 'POST', '/v1/groups/9/open', { contextId: await context(alice) }), 403, 'EACCES');
  });

  it('the container model brings type1 rules: page alignment, aperture and the MSI window', async () => {
    const { alice, call, context, ioas } = await setup('group-first');
    const a = await context(alice);
    const container = await ioas(alice, a);
    await call(alice, 'POST', '/v1/groups/11/open', { contextId: a });
    await call(alice, 'PUT', '/v1/groups/11/container', { ioasId: container });
    const map = (iova: string, length: string) => call(alice, 'POST', `/v1/ioas/${container}/mappings`, { iova, length, userAddress: '0x7f0000000000' });
    expect((await map('0x100000', '0x1000')).statusCode).toBe(201);
    expectProblem(await map('0xfee00000', '0x1000'), 400, 'EINVAL');
    expectProblem(await map('0x1000000000000', '0x1000'), 400, 'EINVAL');
    expectProblem(await map('0x200800', '0x1000'), 400, 'EINVAL');
    expectProblem(await call(alice, 'POST', `/v1/ioas/${container}/mappings`, { length: '0x1000', userAddress: 0 }), 400, 'EINVAL'); // no auto IOVA
    expect((await call(alice, 'GET', `/v1/ioas/${container}/iova-ranges`)).json().alignment).toBe('0x1000');
    // The last group out of the container takes the model and every mapping with it.
    expect((await call(alice, 'DELETE', '/v1/groups/11/container')).json().containerId).toBeNull();
    expect((await call(alice, 'GET', `/v1/ioas/${container}`)).json()).toMatchObject({ mappings: 0, alignment: '0x1' });
  });

  it('a later group whose reserved regions exclude existing mappings: EINVAL', async () => {
    const { t, alice, call, context, ioas } = await setup('group-first');
    await t.admin({ method: 'PUT', url: '/v1/devices/0000:02:01.2/driver', payload: { driver: 'vfio-pci' } });
    const topo = (await t.admin({ url: '/v1/topology' })).json();
    const vf = topo.devices.find((d: { id: string }) => d.id === '0000:02:01.2');
    vf.reservedRegions = [{ start: '0x100000', last: '0x1fffff', type: 'direct' }];
    await t.admin({ method: 'PUT', url: '/v1/topology', payload: topo });
    const a = await context(alice);
    const container = await ioas(alice, a);
    await call(alice, 'POST', '/v1/groups/11/open', { contextId: a });
    await call(alice, 'PUT', '/v1/groups/11/container', { ioasId: container });
    await call(alice, 'POST', `/v1/ioas/${container}/mappings`, { iova: '0x100000', length: '0x1000', userAddress: 0 });
    await call(alice, 'POST', '/v1/groups/5/open', { contextId: a });
    expectProblem(await call(alice, 'PUT', '/v1/groups/5/container', { ioasId: container }), 400, 'EINVAL');
    expect((await call(alice, 'GET', `/v1/ioas/${container}`)).json().mappings).toBe(1);
  });

  it('mdev groups go in a container without an ownership claim; the parent stays on its kernel driver', async () => {
    const { alice, call, context, ioas, driver } = await setup('group-first');
    const a = await context(alice);
    const container = await ioas(alice, a);
    await call(alice, 'POST', '/v1/groups/100/open', { contextId: a });
    expect((await call(alice, 'PUT', '/v1/groups/100/container', { ioasId: container })).statusCode).toBe(200);
    expectProblem(await driver('0000:05:00.0', 'vfio-pci'), 409, 'EBUSY');
  });

  it('an mdev and its parent are never owned at once, whichever is opened first', async () => {
    const { alice, bob, call, context } = await setup('group-first');
    const a = await context(alice);
    await call(alice, 'POST', '/v1/groups/100/open', { contextId: a });
    const parentBusy = expectProblem(await call(bob, 'POST', '/v1/groups/10/open', { contextId: await context(bob) }), 409, 'EBUSY');
    expect(parentBusy.blockers).toEqual([{ kind: 'device', id: MDEV1, reason: 'virtual device in use', owner: 'other' }]);
    expectProblem(await call(alice, 'POST', '/v1/groups/10/open', { contextId: a }), 409, 'EBUSY');
    await call(alice, 'POST', '/v1/groups/100/close');
    expect((await call(bob, 'POST', '/v1/groups/10/open', { contextId: await context(bob) })).statusCode).toBe(200);
    const mdevBusy = expectProblem(await call(alice, 'POST', '/v1/groups/100/open', { contextId: a }), 409, 'EBUSY');
    expect(mdevBusy.blockers).toEqual([{ kind: 'device', id: '0000:05:00.0', reason: 'parent owned by a user', owner: 'other' }]);
  });

  it('closing the context releases devices, container and group; routes of the other policy are EOPNOTSUPP', async () => {
    const { t, alice, call, context, ioas } = await setup('group-first');
    const a = await context(alice);
    const container = await ioas(alice, a);
    await call(alice, 'POST', '/v1/groups/11/open', { contextId: a });
    await call(alice, 'PUT', '/v1/groups/11/container', { ioasId: container });
    await call(alice, 'POST', `/v1/groups/11/devices/${DSA}/open`);
    await call(alice, 'POST', `/v1/ioas/${container}/mappings`, { iova: '0x100000', length: '0x1000', userAddress: 0 });
    expectProblem(await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a }), 422, 'EOPNOTSUPP');
    expectProblem(await call(alice, 'POST', '/v1/hwpts', { deviceId: DSA, ptId: container }), 422, 'EOPNOTSUPP');
    expect((await call(alice, 'DELETE', `/v1/contexts/${a}`)).statusCode).toBe(204);
    for (const table of ['group_holds', 'device_opens', 'ioas', 'mappings', 'contexts']) {
      expect(t.app.ioasd.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get(), table).toBe(0);
    }
  });
});

describe('policy switch and admin guards', () => {
  it('PUT /system/policy is refused EBUSY with blockers while anything is held; dryRun changes nothing', async () => {
    const { t, alice, call, context } = await setup('device-first');
    const a = await context(alice);
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a });
    const set = (body: object) => t.admin({ method: 'PUT', url: '/v1/system/policy', payload: body });
    const busy = expectProblem(await set({ policy: 'group-first', dryRun: true }), 409, 'EBUSY');
    expect(busy.blockers).toEqual([{ kind: 'device', id: DSA, reason: 'bound (device-first)', owner: a }]);
    expectProblem(await set({ policy: 'group-first' }), 409, 'EBUSY');
    expectProblem(await call(alice, 'PUT', '/v1/system/policy', { policy: 'group-first' }), 403, 'EACCES');
    await call(alice, 'POST', `/v1/devices/${DSA}/unbind`);
    expect((await set({ policy: 'group-first', dryRun: true })).json()).toEqual({
      policy: 'group-first',
      previous: 'device-first',
      changed: false,
      dryRun: true,
      effects: [{ kind: 'policy-changed', from: 'device-first', to: 'group-first' }],
    });
    expect((await t.admin({ url: '/v1/system' })).json().policy).toBe('device-first');
    expect((await set({ policy: 'group-first' })).json()).toEqual({ policy: 'group-first', previous: 'device-first', changed: true, dryRun: false });
    expect((await t.admin({ url: '/v1/system' })).json().policy).toBe('group-first');
    expectProblem(await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: a }), 422, 'EOPNOTSUPP');
  });

  it('the policy in force survives a restart; a start asking for another one while anything is held is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ioasd-pol-'));
    const db = join(dir, 'ioasd.db');
    try {
      const first = await testApp({ db, policy: 'device-first', leaseCheckMs: 0 });
      await first.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy: 'group-first' } });
      const ctx = (await first.admin({ method: 'POST', url: '/v1/contexts', payload: {} })).json().id;
      expect((await first.admin({ method: 'POST', url: '/v1/groups/2/open', payload: { contextId: ctx } })).statusCode).toBe(200);
      await first.close();
      const second = await testApp({ db, leaseCheckMs: 0 });
      expect((await second.admin({ url: '/v1/system' })).json().policy).toBe('group-first');
      expect((await second.admin({ url: '/v1/groups/2' })).json().owner).toBe(ctx);
      await second.close();
      await expect(testApp({ db, policy: 'device-first', leaseCheckMs: 0 })).rejects.toThrow(/policy cannot change/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hot-unplug of an owned device and a topology import while anything is owned: EBUSY', async () => {
    const { t, alice, call, context } = await setup('device-first');
    await call(alice, 'POST', `/v1/devices/${DSA}/bind`, { contextId: await context(alice) });
    const unplug = expectProblem(await t.admin({ method: 'DELETE', url: `/v1/devices/${DSA}` }), 409, 'EBUSY');
    expect(unplug.blockers).toEqual([{ kind: 'device', id: DSA, reason: 'group 11 is owned', owner: expect.any(String) }]);
    const topo = (await t.admin({ url: '/v1/topology' })).json();
    expectProblem(await t.admin({ method: 'PUT', url: '/v1/topology', payload: topo }), 409, 'EBUSY');
    expect((await t.admin({ url: '/v1/devices?free=false' })).json().map((d: { id: string }) => d.id)).toEqual([DSA]);
  });
});
