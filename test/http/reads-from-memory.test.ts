import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { ADMIN_TOKEN, expectProblem, testApp, type TestApp } from '../helpers.js';

/**
 * GET answers come from memory (the inventory, group views, the system summary, principals). They
 * must be what the database says: equal to a restarted server's answers after any mix of changes,
 * untouched by dry runs and refusals; and memory that no longer equals the database is reported by
 * GET /v1/system/check.
 */
const dir = mkdtempSync(join(tmpdir(), 'ioasd-reads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const apps: (App | TestApp)[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

const as = (app: App, token: string, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

/** Every read served from memory, as the admin and as a user (who sees other owners as "other"). */
async function reads(app: App, user: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const urls = ['/v1/groups', '/v1/groups/1', '/v1/groups/11', '/v1/devices', '/v1/devices?free=true', '/v1/devices?driver=vfio-pci', '/v1/devices/0000:06:00.0', '/v1/system', '/v1/topology', '/v1/principals'];
  for (const url of urls) {
    const res = await as(app, ADMIN_TOKEN, 'GET', url);
    out[url] = { status: res.statusCode, body: res.json() };
  }
  for (const url of ['/v1/groups', '/v1/groups/3', '/v1/whoami']) {
    const res = await as(app, user, 'GET', url);
    out[`user ${url}`] = { status: res.statusCode, body: res.json() };
  }
  return out;
}

describe('GET answers from memory', () => {
  it('equal a restarted server\'s after changes, and stay as they were through dry runs and refusals', async () => {
    const db = join(dir, 'reads.db');
    let app = await buildApp({ db, adminToken: ADMIN_TOKEN, leaseCheckMs: 0 });
    apps.push(app);
    const admin = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) => as(app, ADMIN_TOKEN, method, url, payload);
    const made = (await admin('POST', '/v1/principals', { name: 'alice', clearances: ['tenant-a', 'shared'] })).json() as { id: string; token: string };
    const alice = made.token;

    // Changes of every kind that feeds a read: driver, plug, unplug, merge import, principals, ownership.
    expect((await admin('PUT', '/v1/devices/0000:01:00.1/driver', { driver: 'vfio-pci' })).statusCode).toBe(200);
    expect(
      (await admin('POST', '/v1/devices', { id: '0000:0a:00.0', kind: 'pci', groupId: 20, driver: 'nvme', reservedRegions: [{ start: '0xe0000000', last: '0xe00fffff', type: 'direct' }] })).statusCode,
    ).toBe(201);
    expect((await admin('DELETE', '/v1/devices/0000:03:00.0')).statusCode).toBe(204);
    const merge = { groups: [{ id: 8, kind: 'iommu', warnings: [{ code: 'no-acs', deviceId: '0000:00:1c.0', detail: 'root port lacks ACS' }] }], devices: [{ id: '0000:00:14.0', kind: 'pci', groupId: 8, driver: 'xhci_hcd' }], warnings: [{ code: 'acs-override', detail: 'pcie_acs_override=downstream' }] };
    expect((await admin('PUT', '/v1/topology?mode=merge', merge)).statusCode).toBe(200);
    expect((await admin('PATCH', `/v1/principals/${made.id}`, { quotas: { maxIoas: 9 } })).statusCode).toBe(200);
    const ctx = (await as(app, alice, 'POST', '/v1/contexts', {})).json().id as string;
    expect((await as(app, alice, 'POST', '/v1/devices/0000:02:01.0/bind', { contextId: ctx })).statusCode).toBe(200);

    const before = await reads(app, alice);
    expect(before['/v1/groups/11']).toMatchObject({ status: 200, body: { id: 11, viable: true, blockers: [], owner: null } });
    expect(before['user /v1/groups/3']).toMatchObject({ status: 200, body: { id: 3, owner: ctx } });
    expect(before['/v1/system']).toMatchObject({ status: 200, body: { counts: { groups: 13, devices: 16, principals: 2 }, warnings: { groups: [8], host: [{ code: 'acs-override' }] } } });

    // Dry runs and refusals change nothing that is read.
    expect((await admin('PUT', '/v1/devices/0000:06:00.0/driver?dryRun=true', { driver: 'nvme' })).json()).toMatchObject({ dryRun: true });
    expect((await admin('DELETE', '/v1/devices/0000:05:00.0?dryRun=true')).json()).toMatchObject({ dryRun: true });
    expect((await admin('PUT', '/v1/topology?dryRun=true', { groups: [], devices: [] })).statusCode).toBeLessThan(500);
    expectProblem(await admin('PUT', '/v1/devices/0000:02:01.0/driver', { driver: 'iavf' }), 409, 'EBUSY');
    expectProblem(await admin('DELETE', '/v1/devices/0000:02:01.0'), 409, 'EBUSY');
    expectProblem(await admin('POST', '/v1/devices', { id: '0000:0c:00.0', kind: 'pci', groupId: 100, driver: 'nvme' }), 400, 'EINVAL');
    expectProblem(await admin('POST', '/v1/principals', { name: 'alice' }), 409, 'EEXIST');
    expect(await reads(app, alice)).toEqual(before);
    expect((await admin('GET', '/v1/system/check')).json()).toMatchObject({ ok: true, violations: [] });

    // A restart derives everything afresh from the database: the same answers.
    await app.close();
    apps.pop();
    app = await buildApp({ db, adminToken: ADMIN_TOKEN, leaseCheckMs: 0 });
    apps.push(app);
    expect(await reads(app, alice)).toEqual(before);
  });
});

describe('GET /v1/system/check and memory', () => {
  it('reports each read model that differs from the database, names a token hash without showing it, while memory goes on answering', async () => {
    const t = await testApp({ leaseCheckMs: 0 });
    apps.push(t);
    const alice = await t.user('alice', ['shared']);
    // Warm every cache first: a cached view must be compared too.
    for (const url of ['/v1/groups', '/v1/groups/11', '/v1/system', '/v1/devices']) expect((await t.admin({ method: 'GET', url })).statusCode).toBe(200);

    // Behind the service's back: a driver, a principal's name and token hash, the host's findings.
    const db = t.app.ioasd.db;
    db.prepare("UPDATE devices SET driver = 'nvme' WHERE id = '0000:06:00.0'").run();
    db.prepare("UPDATE principals SET name = 'mallory', token_hash = 'forged-hash' WHERE id = ?").run(alice.id);
    db.prepare("INSERT INTO settings (key, value) VALUES ('host-warnings', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(JSON.stringify([{ code: 'x', detail: 'planted' }]));

    // Memory is what is served: the old driver, the group still viable, alice's token still hers.
    expect((await t.admin({ method: 'GET', url: '/v1/devices/0000:06:00.0' })).json()).toMatchObject({ driver: 'vfio-pci' });
    expect((await t.admin({ method: 'GET', url: '/v1/groups/11' })).json()).toMatchObject({ viable: true });
    expect((await t.as(alice.token, { method: 'GET', url: '/v1/whoami' })).json()).toMatchObject({ name: 'alice' });

    const res = await t.admin({ method: 'GET', url: '/v1/system/check' });
    expect(res.statusCode).toBe(200);
    const report = res.json() as { ok: boolean; violations: { invariant: string; object: string; detail: string }[] };
    expect(report.ok).toBe(false);
    expect(new Set(report.violations.map((v) => v.invariant))).toEqual(new Set(['memory-equals-database']));
    const objects = report.violations.map((v) => v.object).sort();
    expect(objects).toEqual(['device:0000:06:00.0', 'group-view:11', 'host-warnings', `principal:${alice.id}`, 'system', `token:${alice.id}`].sort());
    expect(report.violations.find((v) => v.object === 'device:0000:06:00.0')!.detail).toMatch(/memory .*vfio-pci.* \/ database .*nvme/);
    expect(report.violations.find((v) => v.object === 'group-view:11')!.detail).toMatch(/memory .*"viable":true.* \/ database .*"viable":false/);
    expect(report.violations.find((v) => v.object === `token:${alice.id}`)!.detail).toBe('the token hash differs');
    expect(res.body).not.toContain('forged-hash');
    expect(res.body).not.toContain(t.app.ioasd.memory.principals.tokenHashOf(alice.id)!);
  });
});
