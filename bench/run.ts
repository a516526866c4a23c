/**
 * The benchmark suite (never part of the tests):
 *
 *   npm run bench                     every section
 *   npm run bench -- core http        some sections: core, store, http, restart
 *   npm run bench -- --quick          fewer/shorter rounds (a smoke run, figures are noisier)
 *
 * This machine's cores are few and noisy, so every figure with a target is a ratio against a baseline
 * measured in the same run (or a time), printed with the raw numbers; measurements alternate with
 * their baselines and the medians are reported. The service is measured as built (see
 * suite/compiled.ts). Temporary files are removed at the end, also on Ctrl-C.
 */
import { cleanUp, fmt, table, type Figure } from './suite/common.js';
import { compileService } from './suite/compiled.js';
import { benchCore } from './suite/core.js';
import { benchHttp } from './suite/http.js';
import { benchRestart } from './suite/restart.js';
import { benchStore } from './suite/store.js';

const SECTIONS = ['core', 'store', 'http', 'restart'] as const;
type Section = (typeof SECTIONS)[number];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const unknown = argv.filter((a) => a !== '--quick' && !(SECTIONS as readonly string[]).includes(a));
if (unknown.length > 0) {
  console.error(`unknown argument(s) ${unknown.join(', ')}; sections are ${SECTIONS.join(', ')}, option --quick`);
  process.exit(2);
}
const chosen: Section[] = SECTIONS.filter((s) => argv.includes(s));
const sections = chosen.length > 0 ? chosen : [...SECTIONS];

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

const started = Date.now();
const figures: Figure[] = [];
try {
  const build = compileService();
  console.log(`bench: service transpiled from src/ in ${fmt(build.seconds, 1)} s; sections: ${sections.join(', ')}${quick ? ' (quick)' : ''}`);
  const rounds = quick ? 1 : 3;
  let coreFixedNs: Map<number, number> | undefined;
  for (const section of sections) {
    console.log(`\n== ${section}`);
    if (section === 'core') {
      const core = await benchCore({ rounds, quick });
      coreFixedNs = core.fixedNs;
      figures.push(...core.figures);
    } else if (section === 'store') {
      figures.push(...(await benchStore({ rounds, quick, coreFixedNs })));
    } else if (section === 'http') {
      figures.push(...(await benchHttp({ rounds, quick })));
    } else {
      figures.push(...(await benchRestart({ rounds, quick })));
    }
  }
} finally {
  cleanUp();
}

console.log(`\n== summary (${fmt((Date.now() - started) / 1000)} s; node ${process.version})\n`);
console.log(table(figures));
const raw = figures.filter((f) => f.raw !== undefined);
if (raw.length > 0) {
  console.log('\nraw numbers:');
  for (const f of raw) console.log(`  ${f.name}: ${f.raw}`);
}
const missed = figures.filter((f) => f.target !== undefined && !f.pass);
console.log(missed.length === 0 ? '\nevery target met' : `\n${missed.length} target(s) missed: ${missed.map((f) => f.name).join('; ')}`);
