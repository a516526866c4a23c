import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromDocument } from '../../src/schemas/topology.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { ADMIN_TOKEN, testApp } from '../helpers.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';

/**
 * ioasd never writes to the host it reads: a copy of a tree, loaded and rescanned, is left exactly
 * as it was, every entry's type, mode, modification time, size, contents and link target.
 */

const trees = fixtureTrees();
afterAll(() => trees.remove());

function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    const rel = path.relative(root, p) || '.';
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
    let body = '';
    if (st.isSymbolicLink()) body = fs.readlinkSync(p);
    else if (st.isFile()) body = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    out.set(rel, `${kind} mode=${st.mode.toString(8)} mtime=${st.mtimeMs} size=${st.size} ${body}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
  };
  walk(root);
  return out;
}

describe('read-only', () => {
  for (const name of ['desktop', 'sriov', 'mdevs', 'amd']) {
    it(`leaves a copy of the ${name} tree unchanged through a load and a rescan`, async () => {
      const source = trees.host(name);
      const copy = path.join(path.dirname(source.sys), `..`, `copy-${name}`);
      fs.cpSync(path.dirname(source.sys), copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      const sys = path.join(copy, 'sys');
      const proc = path.join(copy, 'proc');
      const before = snapshot(copy);
      expect(before.size).toBeGreaterThan(50);
      expect([...before.values()].filter((v) => v.startsWith('link')).length).toBeGreaterThan(10);

      const doc = readSysfsTopology(sys, { proc });
      const t = await testApp({ topology: doc, hostScan: () => readSysfsTopology(sys, { proc }) });
      try {
        const res = await t.as(ADMIN_TOKEN, { method: 'POST', url: '/v1/topology/rescan' });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ dryRun: false, effects: [] }); // nothing changed on the host
      } finally {
        await t.close();
      }
      expect(fromDocument(doc).topology.devices.length).toBeGreaterThan(0);
      expect(snapshot(copy)).toEqual(before);
    });
  }
});
