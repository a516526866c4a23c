import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import { problem, sendProblem } from '../errors.js';

/**
 * The topology page: static files served as they are (no build step of their own). They live in
 * src/http/ui and `npm run build` copies them to dist/http/ui, so the directory sits beside this
 * module's parent both when run from source and from dist.
 */
export const UI_DIR = fileURLToPath(new URL('../ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// The page holds no data and runs only its own files: scripts, styles and requests stay on this origin.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * GET /ui (the page) and GET /ui/<file> (its scripts and styles): no token needed, since the page
 * asks for one and calls /v1 with it. Files are read once at start; only the files of the directory
 * are served (by name, so no path reaches outside it). Hidden from the OpenAPI document.
 */
export const uiRoutes: FastifyPluginAsync = async (app) => {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(UI_DIR)) {
    const type = TYPES[extname(name)];
    if (type && !name.endsWith('.d.ts')) files.set(name, { type, body: readFileSync(join(UI_DIR, name)) });
  }
  const index = files.get('index.html');
  if (!index) throw new Error(`topology page missing: no index.html in ${UI_DIR}`);

  const headers = {
    'cache-control': 'no-cache',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };

  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.headers(headers).type(index.type).send(index.body));
  app.get('/ui/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui', 301));
  app.get<{ Params: { file: string } }>('/ui/:file', { schema: { hide: true } }, async (request, reply) => {
    const file = request.params.file === 'index.html' ? undefined : files.get(request.params.file);
    if (!file) return sendProblem(reply, problem(request, 'ENOENT', `no file ${request.params.file} in the topology page`));
    return reply.headers(headers).type(file.type).send(file.body);
  });
};
