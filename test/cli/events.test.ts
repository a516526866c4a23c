import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, cli, Server, spawnCli } from './harness.js';

/** `ioasctl events` against a real server that goes away and comes back. */
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

async function until(ready: () => boolean, what: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting; got:\n${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ioasctl events', () => {
  it('prints one line per event, from a position, and stops after --count', async () => {
    server = await Server.start();
    const ctx = ((await server.api(ADMIN, 'POST', '/v1/contexts', { name: 'watched' })).body as { id: string }).id;
    const human = await cli(['events', '--after', '0', '--count', '2'], { IOASD_URL: server.url, IOASD_TOKEN: ADMIN });
    expect(human.code).toBe(0);
    const out = lines(human.stdout);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^1 {2}\d{4}-\d\d-\d\dT\S+Z {2}topology\.imported {2}topology topology$/);
    expect(out[1]).toBe(`2  ${String((server.app.ioasd.store.eventsAfter(1, 1)[0] as { at: string }).at)}  context.created  context ${ctx}  name=watched`);
    const json = await cli(['--json', 'events', '--after', '1', '--count', '1'], { IOASD_URL: server.url, IOASD_TOKEN: ADMIN });
    expect(JSON.parse(json.stdout)).toMatchObject({ seq: 2, type: 'context.created', object: { kind: 'context', id: ctx }, state: { name: 'watched' } });
  });

  it('follows the stream across a server restart: resumes with Last-Event-ID, nothing lost, nothing twice', async () => {
    server = await Server.start();
    const s = server;
    const start = s.app.ioasd.store.eventBounds().newest;
    const child = spawnCli(['--json', 'events', '--after', String(start)], { IOASD_URL: s.url, IOASD_TOKEN: ADMIN });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      const create = async (name: string) => ((await s.api(ADMIN, 'POST', '/v1/contexts', { name })).body as { id: string }).id;
      const a = await create('before-restart');
      await until(() => stdout.includes(a), () => stdout + stderr);
      const first = (JSON.parse(lines(stdout)[0]!) as { seq: number }).seq;

      // The stream drops; changes are made as soon as the server is back, before or after the client reconnects.
      await s.restart();
      const b = await create('after-restart-1');
      const c = await create('after-restart-2');
      for (const id of [a, b, c]) expect((await s.api(ADMIN, 'DELETE', `/v1/contexts/${id}`)).status).toBe(204);
      await until(() => stdout.includes(`"id":"${c}"},"state":null`), () => stdout + stderr);

      const printed = lines(stdout).map((l) => JSON.parse(l) as { seq: number; type: string; object: { id: unknown } });
      const logged = s.app.ioasd.store.eventsAfter(first - 1, 1000);
      expect(printed.map((e) => [e.seq, e.type])).toEqual(logged.map((e) => [e.seq, e.type]));
      expect(printed.filter((e) => e.type === 'context.created').map((e) => e.object.id)).toEqual([a, b, c]);
      expect(stderr).toMatch(/event stream lost \(.*\); reconnecting/);
      expect(stderr).toMatch(/reconnected; resuming after event \d+/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('ends with the refusal when the token is refused (no retrying)', async () => {
    server = await Server.start();
    const r = await cli(['events'], { IOASD_URL: server.url, IOASD_TOKEN: 'not-a-valid-token-at-all' });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('EACCES');
  });

  it('stops with the server exit status when the URL answers something that is not an event stream', async () => {
    const page = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not ioasd</html>'));
    await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
    try {
      const r = await cli(['events'], { IOASD_URL: `http://127.0.0.1:${(page.address() as AddressInfo).port}`, IOASD_TOKEN: 'any-token-at-all-0123456789' });
      expect(r.code).toBe(8);
      expect(r.stderr).toContain('event stream refused: HTTP 200 with text/html, not text/event-stream (is --server the ioasd server?)');
    } finally {
      page.closeAllConnections();
      await new Promise((r) => page.close(r));
    }
  });
});
