import { readFileSync } from 'node:fs';
import { fail } from '../core/errors.js';
import { parseOrFail } from '../schemas/problems.js';
import { TopologyInput, type TopologyDocument } from '../schemas/topology.js';

/** Reads a topology document from a JSON file (`--topology FILE`), refusing it with every problem listed. */
export function readTopologyFile(path: string): TopologyDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail('ENOENT', `cannot read topology file ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail('EINVAL', `topology file ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseOrFail(TopologyInput, json, `topology file ${path}`);
}
