/**
 * Writes the sysfs fixture hosts the tests use (test/fixtures/sysfs/hosts.ts) as real trees, to look
 * at them or to point a server at one:
 *   npx tsx scripts/make-sysfs-fixtures.ts OUTDIR [--user]
 *   npx tsx src/main.ts --sysfs OUTDIR/desktop/sys --proc OUTDIR/desktop/proc --db /tmp/ioasd.db
 * --user writes configuration space as a non-root reader sees it (the first 64 bytes). The tests
 * generate the same trees into temporary directories; nothing generated is committed.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildHost } from '../test/fixtures/sysfs/build.js';
import { HOSTS } from '../test/fixtures/sysfs/hosts.js';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--'));
if (!out) {
  console.error('usage: tsx scripts/make-sysfs-fixtures.ts OUTDIR [--user]');
  process.exit(2);
}
const dir = resolve(out);
if (existsSync(dir) && readdirSync(dir).length > 0) {
  console.error(`${dir} is not empty: choose a new directory`);
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
for (const host of HOSTS) {
  const { sys, proc } = buildHost(host, join(dir, host.name), { configAccess: args.includes('--user') ? 'user' : 'root' });
  console.log(`${host.name.padEnd(14)} --sysfs ${sys} --proc ${proc}  (${host.summary})`);
}
