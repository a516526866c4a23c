/**
 * The benchmarks measure the service as `node dist/main.js` runs it, not the TypeScript sources
 * through tsx: tsx compiles with esbuild's keepNames, which wraps every named function expression in
 * a `__name(fn, "...")` call, a cost the built service does not pay. Instead of relying on dist/ being
 * fresh (or writing it), src/ is transpiled here with the compiler options of tsconfig.build.json
 * into a private temporary directory that looks like the package root (package.json, migrations/ and
 * node_modules/ linked), so the runtime paths of src/version.ts and src/store/migrations.ts resolve.
 *
 * Types still come from src/: bench code is type-checked against the sources.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { secondsSince, nowNs, tempDir } from './common.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENV = 'IOASD_BENCH_BUILD';

/** Transpiles src/ (no type check: others may be mid-edit) and returns the directory holding dist/. */
export function compileService(): { dir: string; seconds: number } {
  const t0 = nowNs();
  const tmp = tempDir('ioasd-bench-build-');
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.build.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!config) throw new Error('cannot read tsconfig.build.json');
  const rootDir = config.options.rootDir ?? join(ROOT, 'src');
  const compilerOptions: ts.CompilerOptions = {
    ...config.options,
    // transpileModule cannot look up package.json "type", so it is told the output is ESM outright.
    module: ts.ModuleKind.ES2022,
    noEmit: false,
    sourceMap: false,
    inlineSourceMap: false,
    declaration: false,
  };
  for (const file of config.fileNames) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
    const out = join(tmp.dir, 'dist', relative(rootDir, file)).replace(/\.ts$/, '.js');
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: file });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
  }
  for (const name of ['package.json', 'migrations', 'node_modules']) symlinkSync(join(ROOT, name), join(tmp.dir, name));
  process.env[ENV] = tmp.dir;
  return { dir: tmp.dir, seconds: secondsSince(t0) };
}

/** Imports a module of the transpiled service, e.g. `load<typeof import('../../src/app.js')>('app.js')`. */
export async function load<M>(path: string): Promise<M> {
  const dir = process.env[ENV];
  if (!dir) throw new Error(`${ENV} is not set: call compileService() first`);
  return (await import(pathToFileURL(join(dir, 'dist', path)).href)) as M;
}
