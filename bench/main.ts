/**
 * npm run bench [-- core|http|restart ...]: the allocator's benchmarks. Never part of the tests.
 * Every figure that has a target is a ratio or a time measured in this run, on this machine.
 */
import { benchCore } from './core.js';
import { benchHttp } from './http.js';
import { benchRestart } from './restart.js';
import { table, type Figure } from './util.js';

const all: Record<string, () => Figure[] | Promise<Figure[]>> = { core: benchCore, http: benchHttp, restart: benchRestart };
const chosen = process.argv.slice(2).filter((a) => a in all);
const figures: Figure[] = [];
for (const name of chosen.length ? chosen : Object.keys(all)) figures.push(...(await all[name]!()));
console.log('\n' + table(figures));
