import { describe, expect, it } from 'vitest';
import type { CoreObject } from '../../src/core/model.js';
import { fromDocument } from '../../src/schemas/topology.js';
import { demoTopology } from '../../src/topology/demo.js';
import { testApp } from '../helpers.js';
import { coreFixture, errnoOf, type StoreKind } from './fixture.js';

/** The object table: one lookup, typed references, one destroy rule, one teardown (kernel: iommufd/main.c). */
const VF = '0000:02:01.0'; // tenant-a, vfio-pci, alone in group 3
const DSA = '0000:06:00.0'; // shared, PASID-capable, group 11

function demo(kind: StoreKind) {
  const f = coreFixture('device-first', ':memory:', undefined, kind);
  f.core.inventory.import({ ...fromDocument(demoTopology()), mode: 'replace' }, null);
  f.core.principals.update('alice', { clearances: ['shared', 'tenant-a'] }, null);
  return f;
}

describe.each<StoreKind>(['sqlite', 'memory'])('object table (%s store)', (kind) => {
  it('one lookup: a missing, foreign or wrong-type id is ENOENT alike', () => {
    const f = demo(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    expect(f.core.objects.get(f.alice, 'ioas', ioas.id)).toBe(ioas);
    expect(errnoOf(() => f.core.objects.get(f.alice, 'ioas', ioas.id + 1))).toBe('ENOENT');
    expect(errnoOf(() => f.core.objects.get(f.bob, 'ioas', ioas.id))).toBe('ENOENT');
    expect(errnoOf(() => f.core.objects.get(f.alice, 'hwpt', ioas.id))).toBe('ENOENT');
    expect(errnoOf(() => f.core.objects.get(f.alice, 'context', 'nope'))).toBe('ENOENT');
    expect(f.core.objects.get({ id: 'root', role: 'admin' }, 'context', ctx.id)).toBe(ctx);
  });

  it('references are typed objects, and the one destroy rule names every user as a blocker', () => {
    const f = demo(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const ioas = f.core.ioas.create(f.alice, ctx.id);
    const df = f.core.engine.deviceFirst();
    df.bind(f.alice, VF, ctx.id);
    df.attach(f.alice, VF, { ptId: ioas.id });
    const [auto] = f.core.engine.hwpts.list(f.alice);
    expect([...ioas.users].map((u) => ({ type: u.type, id: u.id }))).toEqual([{ type: 'hwpt', id: auto!.id }]);
    expect([...auto!.users].map((u) => ({ type: u.type, id: u.id }))).toEqual([{ type: 'attachment', id: VF }]);
    let refused: { errno?: string; blockers?: unknown } = {};
    try {
      f.core.ioas.destroy(f.alice, ioas.id);
    } catch (err) {
      refused = err as typeof refused;
    }
    expect(refused).toMatchObject({ errno: 'EBUSY', blockers: [{ kind: 'hwpt', id: String(auto!.id), reason: `uses ioas ${ioas.id}`, owner: ctx.id }] });
    expect(f.core.objects.blockersOf(auto!)).toEqual([{ kind: 'device', id: VF, reason: 'attached', owner: ctx.id }]);
  });

  it('a context is released leaves first, whatever it holds, and nothing of it stays', () => {
    const f = demo(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const keep = f.core.contexts.create(f.alice, {});
    const a = f.core.ioas.create(f.alice, ctx.id);
    const kept = f.core.ioas.create(f.alice, keep.id);
    const df = f.core.engine.deviceFirst();
    df.bind(f.alice, VF, ctx.id);
    df.attach(f.alice, VF, { ptId: a.id });
    df.bind(f.alice, DSA, ctx.id);
    const parent = f.core.engine.hwpts.alloc(f.alice, { deviceId: DSA, ptId: a.id, nestParent: true });
    const nested = f.core.engine.hwpts.alloc(f.alice, { deviceId: DSA, ptId: parent.id, pasid: true, data: { stage1: 'x' } });
    df.attach(f.alice, DSA, { ptId: nested.id });
    df.attach(f.alice, DSA, { ptId: nested.id, pasid: 5 });
    f.core.mappings.map(f.alice, a.id, { iova: 0x100000n, length: 0x1000n, userAddress: 0n, read: true, write: true });
    const types = new Set(f.core.objects.ofContext(ctx.id).map((o: CoreObject) => o.type));
    expect([...types].sort()).toEqual(['attachment', 'binding', 'context', 'hwpt', 'ioas', 'pasid-attachment']);
    f.core.contexts.delete(f.alice, ctx.id);
    expect(f.core.objects.ofContext(ctx.id)).toEqual([]);
    expect(f.core.objects.ofContext(keep.id).map((o) => o.type).sort()).toEqual(['context', 'ioas']);
    expect(kept.users.size).toBe(0);
    expect(f.store.listBindings()).toEqual([]);
    expect(f.store.listHwpts()).toEqual([]);
    expect(f.store.listPasids()).toEqual([]);
    expect(f.core.quotas.usageFor('alice')).toEqual({ ioas: 1, mappings: 0, pinnedBytes: 0n });
    // The same state after a restart.
    const again = f.restart();
    expect(again.objects.ofContext(ctx.id)).toEqual([]);
    expect(again.ioas.get(f.alice, kept.id).id).toBe(kept.id);
  });

  it('a replace onto a new automatic hwpt makes it before the old one goes: the old id is never reused for it', () => {
    const f = demo(kind);
    const ctx = f.core.contexts.create(f.alice, {});
    const a = f.core.ioas.create(f.alice, ctx.id);
    const b = f.core.ioas.create(f.alice, ctx.id);
    const df = f.core.engine.deviceFirst();
    df.bind(f.alice, VF, ctx.id);
    df.attach(f.alice, VF, { ptId: a.id });
    const old = df.hwptIdOf(f.core.objects.find('binding', VF)!)!;
    df.attach(f.alice, VF, { ptId: b.id, replace: true });
    const now = df.hwptIdOf(f.core.objects.find('binding', VF)!)!;
    expect(now).not.toBe(old);
    expect(f.core.objects.get(f.alice, 'hwpt', now).ioasId).toBe(b.id);
    expect(errnoOf(() => f.core.engine.hwpts.get(f.alice, old))).toBe('ENOENT');
    expect(a.users.size).toBe(0);
    // The freed id goes to the next object made.
    expect(f.core.ioas.create(f.alice, ctx.id).id).toBe(old);
  });
});

describe('replace over HTTP', () => {
  it('the old automatic hwpt answers 404 afterwards and the device is on a new one', async () => {
    const t = await testApp({ leaseCheckMs: 0 });
    try {
      const alice = await t.user('alice', ['tenant-a']);
      const call = (method: 'GET' | 'POST', url: string, payload?: object) => t.as(alice.token, { method, url, ...(payload ? { payload } : {}) });
      const ctx = (await call('POST', '/v1/contexts', {})).json().id as string;
      const a = (await call('POST', '/v1/ioas', { contextId: ctx })).json().id as number;
      const b = (await call('POST', '/v1/ioas', { contextId: ctx })).json().id as number;
      expect((await call('POST', `/v1/devices/${VF}/bind`, { contextId: ctx })).statusCode).toBe(200);
      const first = (await call('POST', `/v1/devices/${VF}/attach`, { ptId: a })).json() as { hwptId: number };
      const second = (await call('POST', `/v1/devices/${VF}/attach`, { ptId: b, replace: true })).json() as { hwptId: number; ioasId: number };
      expect(second.ioasId).toBe(b);
      expect(second.hwptId).not.toBe(first.hwptId);
      expect((await call('GET', `/v1/hwpts/${first.hwptId}`)).statusCode).toBe(404);
      expect((await call('GET', `/v1/hwpts/${second.hwptId}`)).json()).toMatchObject({ ioasId: b, auto: true, devices: [VF] });
    } finally {
      await t.close();
    }
  });
});

describe.each<StoreKind>(['sqlite', 'memory'])('owned counts (%s store)', (kind) => {
  it('a principal\'s context count follows creates, deletes, dry runs and teardown, as a scan of the table would', () => {
    const f = demo(kind);
    const scan = (principalId: string) => [...f.core.objects.all('context').values()].filter((c) => c.principalId === principalId).length;
    const counts = () => ({ alice: f.core.contexts.heldBy(f.alice.id), bob: f.core.contexts.heldBy(f.bob.id) });
    const ids = [0, 1, 2].map(() => f.core.contexts.create(f.alice, {}).id);
    f.core.contexts.create(f.bob, {});
    expect(counts()).toEqual({ alice: 3, bob: 1 });
    f.core.tx.dryRun(() => f.core.contexts.delete(f.alice, ids[0]!));
    expect(counts()).toEqual({ alice: 3, bob: 1 });
    f.core.contexts.delete(f.alice, ids[0]!);
    expect(counts()).toEqual({ alice: 2, bob: 1 });
    f.core.contexts.releasePrincipal(f.alice.id);
    expect(counts()).toEqual({ alice: scan(f.alice.id), bob: scan(f.bob.id) });
    expect(counts()).toEqual({ alice: 0, bob: 1 });
    expect(f.restart().contexts.heldBy(f.bob.id)).toBe(1);
  });
});
