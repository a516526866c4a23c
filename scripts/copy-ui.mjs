// Part of `npm run build`: the topology page's files (src/http/ui: HTML, CSS and browser ES modules,
// served as they are) go beside the compiled routes, in dist/http/ui. The old copy goes first so a
// removed file is not served from a stale build.
import { cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src', 'http', 'ui');
const to = join(root, 'dist', 'http', 'ui');
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.d.ts') });
