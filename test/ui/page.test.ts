import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_DIR } from '../../src/http/routes/ui.js';
import { expectProblem, testApp, type TestApp } from '../helpers.js';

/** How /ui is served: without a token, with a strict CSP, only its own files, outside the API document. */

let t: TestApp;
beforeAll(async () => {
  t = await testApp({ leaseCheckMs: 0 });
});
afterAll(() => t.close());

describe('GET /ui', () => {
  it('serves the page without a token, with a CSP that allows only its own origin', async () => {
    const res = await t.as(null, { method: 'GET', url: '/ui' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toContain('<script type="module" src="/ui/app.js"></script>');
    // No inline script or style, which the CSP would refuse.
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.body).not.toMatch(/<style|style="/);
    expect((await t.as(null, { method: 'GET', url: '/ui/' })).headers.location).toBe('/ui');
  });

  it('serves every module the page imports, with a JavaScript type', async () => {
    const seen = new Set<string>();
    const queue = ['app.js'];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const res = await t.as(null, { method: 'GET', url: `/ui/${file}` });
      expect(res.statusCode, file).toBe(200);
      expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
      for (const m of res.body.matchAll(/^import [^'"]*from '\.\/([\w.-]+)';$/gm)) queue.push(m[1]!);
    }
    expect([...seen].sort()).toEqual(['app.js', 'sse.js', 'why.js']);
    expect((await t.as(null, { method: 'GET', url: '/ui/style.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers problem+json for anything else, and never reaches outside its directory', async () => {
    for (const url of ['/ui/nope.js', '/ui/why.d.ts', '/ui/index.html', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e%2fapp.ts']) {
      expectProblem(await t.as(null, { method: 'GET', url }), 404, 'ENOENT');
    }
    expect((await t.as(null, { method: 'GET', url: '/ui/../../package.json' })).body).not.toContain('"dependencies"');
    expect(readdirSync(UI_DIR)).toContain('index.html');
  });

  it('is not part of the API document', async () => {
    const doc = (await t.as(null, { method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
  });
});
