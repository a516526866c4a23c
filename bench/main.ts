/**
 * npm run bench [-- [--quick] [http|reads|writes|batch|restart|core ...]]: every figure of the
 * performance targets beside its baseline measured in the same run, as one table (Markdown, the
 * README's Performance section is this output). Never part of the tests.
 *
 * Subsets: `reads`, `writes`, `batch` (or `http`, the three), `restart`, `core`; none: all of them.
 * `--quick`: short rounds to check that everything runs (see bench/settings.ts for each knob).
 */
import { availableParallelism, cpus } from 'node:os';
import { HTTP_GROUPS, benchHttp, loaderNotes, type HttpGroup } from './http.js';
import { pinning, settings } from './settings.js';
import { table, type Figure } from './util.js';

const SUBSETS = ['http', ...HTTP_GROUPS, 'restart', 'core'] as const;
type Subset = (typeof SUBSETS)[number];
const args = process.argv.slice(2).filter((a) => a !== '--quick');
const unknown = args.filter((a) => !(SUBSETS as readonly string[]).includes(a));
if (unknown.length > 0) {
  console.error(`bench: unknown ${unknown.join(', ')}; subsets: ${SUBSETS.join(', ')}; flag: --quick`);
  process.exit(2);
}
const chosen = new Set<Subset>(args.length ? (args as Subset[]) : SUBSETS);
const groups = HTTP_GROUPS.filter((g) => chosen.has('http') || chosen.has(g));

// Loaded only when chosen: the core and restart modules import the built service at load.
const figures: Figure[] = [];
if (groups.length > 0) figures.push(...(await benchHttp(groups as HttpGroup[])));
if (chosen.has('restart')) figures.push(...(await (await import('./restart.js')).benchRestart()));
if (chosen.has('core')) figures.push(...(await import('./core.js')).benchCore());

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `\n${settings.quick ? 'QUICK run (short rounds: not for the README). ' : ''}Node ${process.version}, ${availableParallelism()} x ${cpu}; ` +
    `HTTP: ${pinning.note}, ${settings.connections} connections, medians of ${settings.rounds} rounds of ${settings.seconds} s alternating with the baselines; ` +
    `core: medians of ${settings.coreRounds} rounds; restart: median of ${settings.restartRounds} starts.\n`,
);
console.log(table(figures));
for (const note of loaderNotes) console.log(`note: ${note}`);
if (figures.some((f) => f.pass === false)) console.log(`\n${figures.filter((f) => f.pass === false).length} of ${figures.filter((f) => f.pass !== undefined).length} targets missed.`);
