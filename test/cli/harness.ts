import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/app.js';

export const ADMIN = 'cli-test-admin-token-0123456789';

/** A real ioasd on 127.0.0.1 (a temporary database file), restartable on the same port. */
export class Server {
  app!: App;
  url = '';
  port = 0;
  readonly dir = mkdtempSync(join(tmpdir(), 'ioasctl-'));

  static async start(options: { policy?: 'group-first' | 'device-first' } = {}): Promise<Server> {
    const s = new Server();
    await s.listen(options);
    return s;
  }

  async listen(options: { policy?: 'group-first' | 'device-first' } = {}): Promise<void> {
    this.app = await buildApp({ db: join(this.dir, 'ioasd.db'), adminToken: ADMIN, leaseCheckMs: 0, ...options });
    await this.app.listen({ host: '127.0.0.1', port: this.port });
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    this.port = address.port;
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** Stops the server (open event streams end) and starts it again on the same port and database. */
  async restart(): Promise<void> {
    await this.app.close();
    await this.listen();
  }

  async api(token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(this.url + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** A user principal and its token. */
  async user(name: string, clearances: string[], quotas?: Record<string, unknown>): Promise<{ id: string; token: string }> {
    const res = await this.api(ADMIN, 'POST', '/v1/principals', { name, clearances, ...(quotas ? { quotas } : {}) });
    if (res.status !== 201) throw new Error(`principal ${name}: ${res.status}`);
    return res.body as { id: string; token: string };
  }

  async close(): Promise<void> {
    await this.app.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real binary (its TypeScript entry under tsx, as the compiled one runs), with only the environment given. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const home = mkdtempSync(join(tmpdir(), 'ioasctl-home-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/ioasctl.ts', ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...env },
  });
  child.on('exit', () => rmSync(home, { recursive: true, force: true }));
  return child;
}

export function cli(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Run> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A port on 127.0.0.1 that nothing listens on (taken from the system, then let go). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
