import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { COMPOSITE_COMMANDS, flagOf, SHAPES, shapeOf } from '../../src/cli/commands.js';
import { ERRNO_EXIT, EXIT_TABLE } from '../../src/cli/exit-codes.js';
import { buildProgram } from '../../src/cli/program.js';
import { bundledDocument, operationsOf, type OpenApiDocument } from '../../src/cli/spec.js';
import { ERRNOS } from '../../src/core/errors.js';

/**
 * ioasctl cannot drift from the API: its commands are built from the OpenAPI document, and these
 * tests hold them to the document the server actually serves.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let app: App;
let served: OpenApiDocument;
beforeAll(async () => {
  app = await buildApp({ db: ':memory:', adminToken: 'commands-test-admin-token' });
  await app.ready();
  served = app.swagger() as unknown as OpenApiDocument;
});
afterAll(async () => app.close());

const io = { out: () => {}, err: () => {}, env: {} };
const longFlags = (c: Command) => c.options.map((o) => o.long);
const fullName = (c: Command): string[] => (c.parent && c.parent.parent ? [...fullName(c.parent), c.name()] : [c.name()]);

describe('ioasctl commands and the OpenAPI document', () => {
  it('the bundled document is the served one', () => {
    expect(bundledDocument()).toEqual(JSON.parse(JSON.stringify(served)));
  });

  it('every operation is a command, with a flag for each query parameter and body field, --dry-run and --idempotency-key exactly where it takes them', () => {
    const { commands } = buildProgram(served, io, { exit: () => {} });
    const ops = operationsOf(served);
    expect(ops.length).toBeGreaterThan(45);
    for (const op of ops) {
      const cmd = commands.get(op.operationId);
      expect(cmd, op.operationId).toBeDefined();
      const shape = shapeOf(op);
      expect(fullName(cmd!), op.operationId).toEqual(shape.words);
      const positional = op.pathParams.length + (shape.bodyFile ? 1 : 0) + (shape.args?.length ?? 0);
      expect(cmd!.registeredArguments.length, op.operationId).toBe(positional);
      const flags = longFlags(cmd!);
      expect(flags.includes('--dry-run'), `${op.operationId} --dry-run`).toBe(op.dryRun);
      expect(flags.includes('--idempotency-key'), `${op.operationId} --idempotency-key`).toBe(op.idempotent);
      for (const p of op.queryParams) expect(flags.some((f) => f === `--${flagOf(p.name)}` || f === `--no-${flagOf(p.name)}`), `${op.operationId} ${p.name}`).toBe(true);
      for (const f of op.body?.fields ?? []) {
        if (shape.args?.includes(f.name)) continue;
        expect(flags.some((x) => x === `--${flagOf(f.name)}` || x === `--no-${flagOf(f.name)}`), `${op.operationId} ${f.name}`).toBe(true);
      }
    }
  });

  it('every named command maps to an operation of the document, and no two commands share a name', () => {
    const ids = new Set(operationsOf(served).map((o) => o.operationId));
    for (const id of Object.keys(SHAPES)) expect(ids.has(id), id).toBe(true);
    const { program } = buildProgram(served, io, { exit: () => {} });
    const names = (c: Command): string[] => c.commands.flatMap((s) => [fullName(s).join(' '), ...names(s)]);
    const all = names(program);
    expect(new Set(all).size).toBe(all.length);
    for (const composite of COMPOSITE_COMMANDS) expect(all).toContain(composite);
  });

  it('an operation the table does not name still gets a command, named from its tag and operationId', () => {
    const doc = JSON.parse(JSON.stringify(served)) as OpenApiDocument;
    doc.paths['/v1/topology/rescan'] = {
      post: {
        operationId: 'rescanTopology',
        tags: ['topology'],
        summary: 'Re-read the host',
        parameters: [
          { in: 'query', name: 'dryRun', schema: { type: 'string', enum: ['true', 'false'] } },
          { in: 'header', name: 'idempotency-key', schema: { type: 'string' } },
        ],
      },
    } as never;
    const { commands } = buildProgram(doc, io, { exit: () => {} });
    const rescan = commands.get('rescanTopology')!;
    expect(fullName(rescan)).toEqual(['topology', 'rescan']);
    expect(longFlags(rescan)).toEqual(expect.arrayContaining(['--dry-run', '--idempotency-key']));
  });

  it('every errno has an exit status, and the README shows the same exit status table as --help', () => {
    expect(Object.keys(ERRNO_EXIT).sort()).toEqual(Object.keys(ERRNOS).sort());
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const guide = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
    for (const row of EXIT_TABLE) {
      const line = `| ${row.status} | ${row.when} | ${row.next} |`;
      expect(readme, line).toContain(line);
      expect(guide, line).toContain(line);
    }
  });

  it("is a client only: src/cli imports nothing of the server, only the page's browser modules, which import nothing", () => {
    const dir = join(ROOT, 'src/cli');
    const ui = join(ROOT, 'src/http/ui');
    const browserModules = new Set<string>();
    for (const file of readdirSync(dir)) {
      for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)) {
        const spec = m[1]!;
        const target = resolve(dir, spec);
        if (spec.startsWith('.') && relative(ui, target) === basename(target) && target.endsWith('.js')) browserModules.add(target);
        else if (spec.startsWith('.')) expect(relative(dir, target).startsWith('..'), `${file} -> ${spec}`).toBe(false);
        else expect(['commander', 'cli-table3'].includes(spec) || spec.startsWith('node:'), `${file} -> ${spec}`).toBe(true);
      }
    }
    // `ioasctl why` runs the why panel's module and `ioasctl events` the page's event-stream client:
    // the one place each of those rules lives.
    expect([...browserModules].map((f) => relative(ROOT, f)).sort()).toEqual(['src/http/ui/sse.js', 'src/http/ui/why.js']);
    for (const file of browserModules) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        expect(m[1], `${relative(ROOT, file)} -> ${m[1]}`).toMatch(/^\.\/[a-z-]+\.js$/);
      }
    }
  });
});
