import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';

/**
 * End to end in a real browser: Debian's chromium driven through playwright-core (never a browser
 * download). The service listens on 127.0.0.1; the page is signed in as a user, changes made through
 * the API show up on it without a reload, the why panel explains the blocked demo GPU, and Swagger UI
 * at /docs authorizes with the same token and runs an operation. Screenshots go to test-artifacts/.
 */

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const TITLE = 'the topology page and Swagger UI in chromium';
if (!available) {
  // eslint-disable-next-line no-console
  console.warn(`\n*** BROWSER TEST SKIPPED: ${CHROMIUM} is missing. Install it (apt-get install -y chromium; .ci/run does) to run the /ui and /docs end-to-end test. ***\n`);
}

const ADMIN = 'browser-test-admin-token-0123456789';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let app: App;
let base: string;
let browser: BrowserContext;
let profile: string;

async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function user(name: string, clearances: string[]): Promise<string> {
  const res = await call(ADMIN, 'POST', '/v1/principals', { name, clearances });
  expect(res.status).toBe(201);
  return res.json.token as string;
}

/**
 * Script errors and console errors of the page (a CSP violation is one). Chromium also logs every
 * 4xx answer as "Failed to load resource"; the refusals this test provokes (a wrong token, a dry
 * run refused) are expected, so those lines are not errors here.
 */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

describe.skipIf(!available)(available ? TITLE : `${TITLE}: SKIPPED, ${CHROMIUM} is missing`, () => {
  beforeAll(async () => {
    app = await buildApp({ db: ':memory:', adminToken: ADMIN, leaseCheckMs: 0, events: { keepAliveMs: 1000 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    mkdirSync(ARTIFACTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'ioasd-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('signs in, follows changes live, explains the blocked GPU', { timeout: 120_000 }, async () => {
    const alice = await user('alice', ['tenant-a', 'shared']);
    const bob = await user('bob', ['tenant-b']);
    const page = await browser.newPage();
    const errors = watchErrors(page);

    await page.goto(`${base}/ui`);
    await page.getByRole('textbox', { name: 'Bearer token' }).waitFor();
    // Before signing in only the form shows.
    expect(await page.locator('#topology').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Forget token' }).isVisible()).toBe(false);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-0-sign-in.png') });
    // A wrong token is refused on the page, in words.
    await page.getByRole('textbox', { name: 'Bearer token' }).fill('not-a-valid-token-at-all');
    await page.getByRole('button', { name: 'Show topology' }).click();
    await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/refused/);

    await page.getByRole('textbox', { name: 'Bearer token' }).fill(alice);
    await page.getByRole('button', { name: 'Show topology' }).click();
    await page.locator('#stream[data-state="live"]').waitFor();
    await page.locator('#group-1').waitFor();
    expect(await page.locator('#who').textContent()).toContain('alice');
    expect(await page.locator('#group-3 .badge.owner').textContent()).toContain('Free');
    expect(await page.locator('#group-1 .badge.bad').textContent()).toContain('Not viable');
    expect(await page.locator('#group-1 .blockers').textContent()).toContain('0000:01:00.1: bound to kernel driver snd_hda_intel');
    await page.screenshot({ path: join(ARTIFACTS, 'ui-1-signed-in.png'), fullPage: true });

    // Changes through the API appear without a reload: the marker set in this document survives.
    await page.evaluate(() => ((globalThis as unknown as { marker: string }).marker = 'same document'));
    const ctx = await call(alice, 'POST', '/v1/contexts', { name: 'vm-1' });
    expect(ctx.status).toBe(201);
    const contextId = ctx.json.id as string;
    expect((await call(alice, 'POST', '/v1/devices/0000:02:01.0/bind', { contextId })).status).toBe(200);
    await expect.poll(() => page.locator('#group-3 .badge.owner').textContent(), { timeout: 15_000 }).toBe(`● Yours (context ${contextId})`);

    const bobCtx = (await call(bob, 'POST', '/v1/contexts', {})).json.id as string;
    expect((await call(bob, 'POST', '/v1/devices/0000:02:01.1/bind', { contextId: bobCtx })).status).toBe(200);
    await expect.poll(() => page.locator('#group-4 .badge.owner').textContent(), { timeout: 15_000 }).toBe('◆ Held by another principal');
    expect(await page.locator('#group-4').textContent()).not.toContain(bobCtx);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe('same document');

    // Select the demo GPU with the keyboard: the why panel names its blocker and the fix.
    await page.locator('button[data-device-id="0000:01:00.0"]').focus();
    await page.keyboard.press('Enter');
    await page.locator('#why-body .verdict[data-verdict="no"]').waitFor();
    expect(await page.locator('button[data-device-id="0000:01:00.0"]').getAttribute('aria-pressed')).toBe('true');
    const why = (await page.locator('#why-body').textContent()) ?? '';
    expect(why).toContain('You cannot take 0000:01:00.0: 1 blocker.');
    expect(why).toContain('0000:01:00.1 (GPU HDMI audio), in the same group 1, is bound to the kernel driver snd_hda_intel');
    expect(why).toContain('PUT /v1/devices/0000:01:00.1/driver {"driver":"vfio-pci"}');
    expect(why).toMatch(/bind\?dryRun=true → 409 EPERM/);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-2-why-blocked-gpu.png'), fullPage: true });

    // The fix, applied by an admin, turns the explanation around live.
    expect((await call(ADMIN, 'PUT', '/v1/devices/0000:01:00.1/driver', { driver: 'vfio-pci' })).status).toBe(200);
    await page.locator('#why-body .verdict[data-verdict="yes"]').waitFor({ timeout: 15_000 });
    // With the request that takes it.
    expect(await page.locator('#why-body .why-next').textContent()).toContain('POST /v1/devices/0000:01:00.0/bind {"contextId":');
    await expect.poll(() => page.locator('#group-1 .badge.ok').textContent()).toContain('Viable');
    await page.screenshot({ path: join(ARTIFACTS, 'ui-3-gpu-fixed.png'), fullPage: true });

    // The token is kept for the tab: a reload signs straight back in.
    await page.reload();
    await page.locator('#stream[data-state="live"]').waitFor();
    expect(await page.locator('#login').isHidden()).toBe(true);
    // Forgetting the token signs out and clears it from the tab.
    await page.getByRole('button', { name: 'Forget token' }).click();
    await page.getByRole('textbox', { name: 'Bearer token' }).waitFor();
    expect(await page.locator('#topology').isVisible()).toBe(false);
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('ioasd.token'))).toBeNull();
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a real host's isolation warnings and a device without an IOMMU group", { timeout: 120_000 }, async () => {
    const trees = fixtureTrees();
    const amd = trees.host('amd');
    const sw = trees.host('server-switch');
    const hosts: App[] = [];
    try {
      for (const [name, tree] of [['amd', amd], ['server-switch', sw]] as const) {
        const host = await buildApp({ db: ':memory:', adminToken: ADMIN, leaseCheckMs: 0, topology: readSysfsTopology(tree.sys, { proc: tree.proc }) });
        hosts.push(host);
        await host.listen({ host: '127.0.0.1', port: 0 });
        const page = await browser.newPage();
        const errors = watchErrors(page);
        await page.goto(`http://127.0.0.1:${(host.server.address() as AddressInfo).port}/ui`);
        await page.getByRole('textbox', { name: 'Bearer token' }).fill(ADMIN);
        await page.keyboard.press('Enter');
        await page.locator('#stream[data-state="live"]').waitFor();
        await page.locator('.group').first().waitFor();
        if (name === 'amd') {
          // The function the firmware leaves out: its own box, and the why panel says never.
          const orphans = page.locator('#group-none');
          expect(await orphans.textContent()).toContain('0000:00:00.2');
          await orphans.locator('button[data-device-id="0000:00:00.2"]').click();
          await page.locator('#why-body [data-rule="no-iommu-group"]').waitFor();
          expect(await page.locator('#why-body').textContent()).toContain('Advice: It can never be assigned');
          expect(await page.locator('#group-5 .group-kind').textContent()).toContain('identity');
        } else {
          const warned = page.locator('.group', { has: page.locator('.warnings') }).first();
          expect(await warned.locator('.warnings').textContent()).toContain('no-acs');
          await warned.locator('button.device').first().click();
          await page.locator('#why-body .why-warnings').waitFor();
        }
        await page.screenshot({ path: join(ARTIFACTS, `ui-host-${name}.png`), fullPage: true });
        expect(errors).toEqual([]);
        await page.close();
      }
    } finally {
      for (const h of hosts) await h.close();
      trees.remove();
    }
  });

  it('Swagger UI at /docs authorizes with the token and runs an operation', { timeout: 120_000 }, async () => {
    const carol = await user('carol', ['shared']);
    const page = await browser.newPage();
    await page.goto(`${base}/docs`);
    await page.locator('.swagger-ui .btn.authorize').first().click();
    const dialog = page.locator('.dialog-ux');
    await dialog.locator('#auth-bearer-value').fill(carol);
    await dialog.locator('button.modal-btn.authorize').click();
    // Authorized: the dialog now offers to remove the authorization.
    await dialog.getByRole('button', { name: 'Remove authorization' }).waitFor();
    await dialog.locator('button.btn-done').click();

    const op = page.locator('#operations-system-whoami');
    await op.locator('.opblock-summary').first().click();
    await op.getByRole('button', { name: 'Try it out' }).click();
    await op.getByRole('button', { name: 'Execute' }).click();
    const live = op.locator('.live-responses-table');
    await live.waitFor();
    await expect.poll(() => live.locator('tr.response .response-col_status').first().textContent()).toContain('200');
    expect(await live.textContent()).toContain('"carol"');
    await op.screenshot({ path: join(ARTIFACTS, 'docs-whoami.png') });
    await page.close();
  });
});
