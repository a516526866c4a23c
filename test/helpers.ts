import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp, type App, type AppOptions } from '../src/app.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestApp {
  app: App;
  /** Injects a request as the admin (or as `token`). */
  as(token: string | null, opts: InjectOptions): Promise<LightMyRequestResponse>;
  admin(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** Creates a user principal and returns its token and id. */
  user(name: string, clearances?: string[]): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

export async function testApp(options: Partial<AppOptions> = {}): Promise<TestApp> {
  const app = await buildApp({ db: ':memory:', adminToken: ADMIN_TOKEN, ...options });
  const as = (token: string | null, opts: InjectOptions) =>
    app.inject({ ...opts, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...opts.headers } });
  const admin = (opts: InjectOptions) => as(ADMIN_TOKEN, opts);
  return {
    app,
    as,
    admin,
    async user(name, clearances = []) {
      const res = await admin({ method: 'POST', url: '/v1/principals', payload: { name, clearances } });
      expect(res.statusCode).toBe(201);
      const body = res.json() as { id: string; token: string };
      return { id: body.id, token: body.token };
    },
    close: () => app.close(),
  };
}

/** Asserts a problem+json answer with this status and errno, and returns its body. */
export function expectProblem(res: LightMyRequestResponse, status: number, errno: string): Record<string, unknown> {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect({ status: res.statusCode, errno: body.errno }).toEqual({ status, errno });
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe('string');
  return body;
}
