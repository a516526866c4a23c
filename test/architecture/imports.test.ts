import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** The import graph of src/, type-only imports and re-exports included. */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function graph(): Map<string, { local: string[]; external: string[] }> {
  const out = new Map<string, { local: string[]; external: string[] }>();
  for (const file of files(SRC)) {
    const local: string[] = [];
    const external: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) local.push(relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
      else external.push(spec);
    }
    out.set(relative(SRC, file), { local, external });
  }
  return out;
}

describe('architecture: http -> core <- store', () => {
  const g = graph();

  it('sees the whole tree (the check itself works)', () => {
    expect(g.size).toBeGreaterThan(40);
    expect(g.get('core/core.ts')?.local).toContain('core/objects.ts');
  });

  it('the core imports nothing outside src/core: no fastify, SQLite, node: or http/store module', () => {
    const offences: string[] = [];
    for (const [file, { local, external }] of g) {
      if (!file.startsWith('core/')) continue;
      for (const l of local) if (!l.startsWith('core/')) offences.push(`${file} -> ${l}`);
      for (const e of external) offences.push(`${file} -> ${e}`);
    }
    expect(offences).toEqual([]);
  });

  it('has no import cycles, type-only imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      stack.push(file);
      for (const next of g.get(file)?.local ?? []) visit(next);
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of g.keys()) visit(file);
    expect(cycles).toEqual([]);
  });
});
