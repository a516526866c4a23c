#!/usr/bin/env node
import { main } from './program.js';
import { bundledDocument } from './spec.js';

/** The ioasctl binary: every API operation as a command (see program.ts), exit status by errno class. */
const code = await main(bundledDocument(), process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
// Let stdout drain (a pipe to jq or head) before exiting.
process.exitCode = code;
