import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { ADMIN_TOKEN, expectProblem, testApp, type TestApp } from '../helpers.js';

/** GET /v1/system/backup: a consistent copy of the live database, for admins. */
let t: TestApp | undefined;
let dir: string;
afterEach(async () => {
  await t?.close();
  t = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('online backup', () => {
  it('answers an SQLite file holding every committed change; a server started on it serves the same state', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-backup-test-'));
    t = await testApp({ db: join(dir, 'live.db') });
    const ctx = (await t.admin({ method: 'POST', url: '/v1/contexts', payload: { name: 'kept' } })).json() as { id: string };
    const ioas = (await t.admin({ method: 'POST', url: '/v1/ioas', payload: { contextId: ctx.id } })).json() as { id: number };
    const batch = Array.from({ length: 50 }, (_, i) => ({ iova: `0x${((i + 1) * 0x1000).toString(16)}`, length: '0x1000', userAddress: '0x7f0000000000' }));
    expect((await t.admin({ method: 'POST', url: `/v1/ioas/${ioas.id}/mappings/batch`, payload: { mappings: batch } })).statusCode).toBe(201);

    const res = await t.admin({ url: '/v1/system/backup' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/vnd.sqlite3');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="ioasd-\d{8}T\d{6}Z\.db"$/);
    expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);
    expect(res.rawPayload.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    // The copy made for the answer is gone once sent.
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(dir).filter((f) => f.startsWith('.ioasd-backup-'))).toEqual([]);

    mkdirSync(join(dir, 'restored'));
    const restored = join(dir, 'restored', 'ioasd.db');
    // HEAD answers the headers and makes no copy.
    const head = await t.admin({ method: 'HEAD', url: '/v1/system/backup' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toBe('application/vnd.sqlite3');
    expect(head.rawPayload.length).toBe(0);
    expect(readdirSync(dir).filter((f) => f.startsWith('.ioasd-backup-'))).toEqual([]);
    writeFileSync(restored, res.rawPayload);
    const other = await buildApp({ db: restored, adminToken: ADMIN_TOKEN, leaseCheckMs: 0 });
    try {
      const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const contexts = (await other.inject({ url: '/v1/contexts', headers: auth })).json() as { id: string; name: string }[];
      expect(contexts.map((c) => [c.id, c.name])).toEqual([[ctx.id, 'kept']]);
      const mappings = (await other.inject({ url: `/v1/ioas/${ioas.id}/mappings?limit=100`, headers: auth })).json() as { items: unknown[] };
      expect(mappings.items).toHaveLength(50);
      const check = (await other.inject({ url: '/v1/system/check', headers: auth })).json() as { ok: boolean };
      expect(check.ok).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('is for admins only', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-backup-test-'));
    t = await testApp();
    const alice = await t.user('alice');
    expectProblem(await t.as(alice.token, { url: '/v1/system/backup' }), 403, 'EACCES');
    expectProblem(await t.as(null, { url: '/v1/system/backup' }), 401, 'EACCES');
  });
});
