import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/core/caller.js';
import { checkInvariants, readSnapshot } from '../../src/core/check.js';
import { createCore, type Core } from '../../src/core/core.js';
import { IoasdError } from '../../src/core/errors.js';
import type { GroupView } from '../../src/core/groups.js';
import type { Device, Topology } from '../../src/core/model.js';
import type { Store } from '../../src/core/ports.js';
import { DEFAULT_QUOTAS } from '../../src/core/principals.js';
import { fromDocument } from '../../src/schemas/topology.js';
import { openDatabase } from '../../src/store/database.js';
import { nodeSecrets } from '../../src/store/secrets.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';
import { demoTopology } from '../../src/topology/demo.js';
import { coreFixture } from './fixture.js';
import { memoryStore } from './memory-store.js';

/**
 * Reads are answered from memory (the inventory, each group's view, the system summary, the
 * principals). After random sequences of inventory and principal changes (driver changes, plug and
 * unplug, imports, rescans, bindings that make later changes refused, some dry runs, some failing
 * part-way on a store write), what memory answers equals what a core freshly built on the database
 * derives, and the invariant check agrees.
 */

const ALICE: Caller = { id: 'alice', role: 'user' };
const DEMO = demoTopology();
const DEVICES = ['0000:01:00.0', '0000:01:00.1', '0000:02:00.0', '0000:02:01.0', '0000:02:01.3', '0000:03:00.0', '0000:00:14.0', '0000:05:00.0', 'c0ffee00-0000-4000-8000-000000000001', '0000:06:00.0', '0000:0a:00.0', '0000:02:01.4', 'nope'];
const DRIVERS = ['vfio-pci', 'none', 'nvme', 'i915', 'snd_hda_intel'];

const device = (over: Partial<Device> & Pick<Device, 'id' | 'kind' | 'groupId'>): Device => ({
  parentId: null,
  driver: 'vfio-pci',
  label: null,
  pasidCapable: false,
  resetGroup: null,
  vendor: null,
  device: null,
  class: null,
  description: null,
  reservedRegions: [],
  ...over,
});

/** Devices to plug: new groups, an existing group, children, no group, and ones refused (duplicate, wrong group kind, missing parent). */
const PLUGS: Device[] = [
  device({ id: '0000:0a:00.0', kind: 'pci', groupId: 20, driver: 'nvme', reservedRegions: [{ start: 0xe0000000n, last: 0xe00fffffn, type: 'direct' }] }),
  device({ id: '0000:01:00.2', kind: 'pci', groupId: 1, driver: 'xhci_hcd' }),
  device({ id: '0000:02:01.4', kind: 'vf', groupId: 21, parentId: '0000:02:00.0' }),
  device({ id: 'c0ffee00-0000-4000-8000-000000000003', kind: 'mdev', groupId: 102, parentId: '0000:05:00.0', driver: 'vfio_mdev' }),
  device({ id: '0000:0b:00.0', kind: 'pci', groupId: null, driver: 'e1000e' }),
  device({ id: '0000:01:00.0', kind: 'pci', groupId: 1 }),
  device({ id: '0000:0c:00.0', kind: 'pci', groupId: 100 }),
  device({ id: '0000:0d:00.1', kind: 'vf', groupId: 22, parentId: '0000:0d:00.0' }),
];

type Op =
  | { k: 'driver'; d: number; driver: number }
  | { k: 'plug'; p: number }
  | { k: 'unplug'; d: number }
  | { k: 'import'; mode: 'replace' | 'merge'; drop: number[]; driver: number; broken: boolean }
  | { k: 'rescan'; drop: number[]; driver: number; d: number; groupWarning: boolean; hostWarning: boolean; pasidBits: number }
  | { k: 'bind' | 'unbind'; d: number }
  | { k: 'principal'; action: 'create' | 'update' | 'rotate' | 'delete'; i: number };
type Step = Op & { dry: boolean; fault: number };

const d = fc.nat(DEVICES.length - 1);
const driver = fc.nat(DRIVERS.length - 1);
const drop = fc.uniqueArray(fc.nat(DEMO.devices.length - 1), { maxLength: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('driver' as const), d, driver }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('plug' as const), p: fc.nat(PLUGS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unplug' as const), d }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('import' as const), mode: fc.constantFrom<'replace' | 'merge'>('replace', 'merge'), drop, driver, broken: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('rescan' as const), drop, driver, d, groupWarning: fc.boolean(), hostWarning: fc.boolean(), pasidBits: fc.constantFrom(20, 20, 16) }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('bind' as const, 'unbind' as const), d }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('principal' as const), action: fc.constantFrom('create' as const, 'update' as const, 'rotate' as const, 'delete' as const), i: fc.nat(3) }) },
);
// One step in four is a dry run; one in five fails on its n-th store write (the audit row and the
// events are the last writes of a change: a failure there is as late as a failing commit).
const stepArb: fc.Arbitrary<Step> = fc.record({ op: opArb, dry: fc.nat(3).map((n) => n === 0), fault: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 12 }) }) }).map(({ op, dry, fault }) => ({ ...op, dry, fault }));

const WRITES = [
  'setIommu', 'insertGroup', 'updateGroup', 'deleteGroup', 'setHostWarnings', 'insertDevice', 'updateDevice', 'deleteDevice', 'setDriver', 'clearInventory',
  'insertPrincipal', 'updatePrincipal', 'setTokenHash', 'deletePrincipal', 'insertContext', 'putBinding', 'deleteBinding', 'insertHwpt', 'deleteHwpt', 'audit', 'appendEvent',
] as const;

class InjectedFailure extends Error {}

/** The store with a fault armed on the n-th write of the next change (a write that fails like a full disk would). */
function faulty(raw: Store): { store: Store; arm(n: number): void } {
  let left = 0;
  const store: Store = { ...raw };
  const wrapped = store as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = raw as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of WRITES) {
    wrapped[name] = (...args: unknown[]) => {
      if (left > 0 && --left === 0) throw new InjectedFailure(`${name} failed`);
      return original[name]!(...args);
    };
  }
  return { store, arm: (n) => void (left = n) };
}

/** The current inventory as a document to import or scan, with some devices gone (and groups left empty dropped). */
function withDropped(t: Topology, dropIdx: number[], change: (d: Device) => Device = (x) => x): Topology {
  const gone = new Set(dropIdx.map((i) => DEMO.devices[i]!.id));
  const devices = t.devices.filter((x) => !gone.has(x.id)).map(change);
  const used = new Set(devices.map((x) => x.groupId));
  return { ...t, groups: t.groups.filter((g) => used.has(g.id)), devices };
}

function run(core: Core, s: Step): void {
  const inv = core.inventory;
  const id = DEVICES[('d' in s ? s.d : 0) % DEVICES.length]!;
  const ctx = () => core.contexts.list(ALICE)[0]?.id ?? core.contexts.create(ALICE, {}).id;
  switch (s.k) {
    case 'driver':
      inv.setDriver(id, DRIVERS[s.driver]!, 'admin');
      return;
    case 'plug':
      inv.addDevice(PLUGS[s.p]!, 'admin');
      return;
    case 'unplug':
      inv.deleteDevice(id, 'admin');
      return;
    case 'import': {
      const base = s.mode === 'replace' ? fromDocument(DEMO).topology : inv.topology();
      const doc = withDropped(base, s.drop, (x) => (x.id === DEVICES[s.driver] ? { ...x, driver: DRIVERS[s.driver]! } : x));
      if (s.broken) doc.devices.push(device({ id: '0000:0e:00.0', kind: 'pci', groupId: 999 }));
      inv.import({ topology: doc, groupMembers: new Map(), mode: s.mode }, 'admin');
      return;
    }
    case 'rescan': {
      const now = inv.topology();
      const scanned = withDropped(now, s.drop, (x) => (x.id === id ? { ...x, driver: DRIVERS[s.driver]! } : x));
      scanned.iommu = { ...now.iommu, pasidBits: s.pasidBits };
      if (s.groupWarning) scanned.groups = scanned.groups.map((g) => (g.id === 8 ? { ...g, warnings: [{ code: 'no-acs', deviceId: '0000:00:1c.0', detail: 'root port lacks ACS' }] } : g));
      scanned.hostWarnings = s.hostWarning ? [{ code: 'acs-override', detail: 'pcie_acs_override=downstream' }] : [];
      core.rescan.apply(scanned, 'admin');
      return;
    }
    case 'bind':
      core.engine.deviceFirst().bind(ALICE, id, ctx());
      return;
    case 'unbind':
      core.engine.deviceFirst().unbind(ALICE, id);
      return;
    case 'principal': {
      // alice stays: she is the caller of the bindings (a deleted principal cannot call anything).
      const all = core.principals.list().filter((p) => s.action !== 'delete' || p.id !== 'alice');
      const target = all[s.i % all.length]!.id;
      if (s.action === 'create') core.principals.create({ name: `user-${s.i}`, role: s.i === 3 ? 'admin' : 'user', clearances: ['shared'] }, 'admin', `2026-01-0${s.i + 1}T00:00:00Z`);
      else if (s.action === 'update') core.principals.update(target, { name: `renamed-${s.i}`, clearances: ['tenant-a', 'shared'], quotas: { maxIoas: 7 + s.i } }, 'admin');
      else if (s.action === 'rotate') core.principals.update(target, { rotateToken: true }, 'admin');
      else core.principals.delete(target, 'admin');
      return;
    }
  }
}

/** What a reader sees, through the services' own reads: equal whether answered from memory or derived afresh. */
function reads(core: Core) {
  const inv = core.inventory;
  return {
    groups: inv.listGroups(),
    group1: inv.listGroups().length > 0 ? inv.getGroup(inv.listGroups()[0]!.id) : null,
    devices: inv.listDevices(),
    vfio: inv.listDevices({ driver: 'vfio-pci' }),
    free: inv.listDevices({ free: true }).map((x) => x.id),
    topology: inv.hasTopology() ? inv.topology() : null,
    summary: inv.hasTopology() ? core.system.summary() : null,
    principals: core.principals.list(),
    tokens: core.principals.list().map((p) => core.memory.principals.tokenHashOf(p.id)),
  };
}

describe.each(['sqlite', 'memory'] as const)('reads from memory (%s store)', (kind) => {
  it('after random changes (refused, dry, failing part-way) memory answers what the database derives', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 20 }), (steps) => {
        const raw = kind === 'sqlite' ? sqliteStore(openDatabase(':memory:').db) : memoryStore();
        raw.setPolicy('device-first');
        raw.insertPrincipal({ id: 'alice', name: 'alice', role: 'user', clearances: ['tenant-a', 'tenant-b', 'shared'], quotas: DEFAULT_QUOTAS, createdAt: 'now', tokenHash: 'hash-alice' });
        raw.insertPrincipal({ id: 'admin', name: 'admin', role: 'admin', clearances: [], quotas: DEFAULT_QUOTAS, createdAt: 'now', tokenHash: 'hash-admin' });
        const { store, arm } = faulty(raw);
        let n = 0;
        const options = { now: () => Date.UTC(2026, 0, 1), secrets: { ...nodeSecrets, newId: (prefix: string) => `${prefix}-${++n}` } };
        const core = createCore(store, options);
        core.inventory.import({ ...fromDocument(DEMO), mode: 'replace' }, null);
        const fresh = () => createCore(raw, options);
        for (const s of steps) {
          arm(s.fault);
          try {
            if (s.dry) core.tx.dryRun(() => run(core, s));
            else run(core, s);
          } catch (err) {
            if (!(err instanceof IoasdError) && !(err instanceof InjectedFailure)) throw err;
          }
          arm(0);
          const db = fresh();
          expect(Object.fromEntries(readSnapshot(core))).toEqual(Object.fromEntries(readSnapshot(db)));
          expect(reads(core)).toEqual(reads(db));
        }
        const report = checkInvariants(core, fresh, raw);
        expect(report.violations).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });
});

describe('the invariant check and memory', () => {
  it('sees memory drifting from the database on either side: a cached view gone stale, a row written behind the core', () => {
    const f = coreFixture();
    f.core.inventory.import({ ...fromDocument(DEMO), mode: 'replace' }, null);
    expect(f.check().violations).toEqual([]);

    // Memory's side: group 1's cached view says viable although its audio function is on a kernel driver.
    const view = f.core.inventory.getGroup(1);
    expect(view.viable).toBe(false);
    const views = (f.core.memory.inventory as unknown as { views: Map<number, GroupView> }).views;
    views.set(1, { ...view, viable: true, blockers: [] });
    expect(f.core.inventory.getGroup(1).viable).toBe(true);
    expect(f.check().violations).toEqual([{ invariant: 'memory-equals-database', object: 'group-view:1', detail: expect.stringMatching(/^memory .*"viable":true.* \/ database .*"viable":false/) }]);
    // The next change to the group derives its view again.
    f.core.inventory.setDriver('0000:01:00.1', 'vfio-pci', null);
    expect(f.check().violations).toEqual([]);

    // The database's side: a principal's quotas and the iommu, written behind the core.
    f.db!.prepare("UPDATE principals SET clearances = '[\"tenant-b\"]' WHERE id = 'alice'").run();
    f.db!.prepare("UPDATE settings SET value = json_set(value, '$.pasidBits', 8) WHERE key = 'iommu'").run();
    expect(f.check().violations.map((v) => v.object).sort()).toEqual(['iommu', 'principal:alice', 'system']);
  });
});
