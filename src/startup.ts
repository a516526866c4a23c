import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IoasdError, type Blocker } from './core/errors.js';
import type { PolicyName } from './core/model.js';

/**
 * What a start says to the person running it: one line once it listens, and for each refusal
 * ioasd expects, one line with the cause and the fix. A refused start leaves no new file behind.
 */

/** A refused start: its message is the one line printed, cause and fix. */
export class StartError extends Error {}

const SHOWN = 5;

/** `--policy X` refused because things are held: names them and how to release them. */
export function policyRefused(err: unknown, wanted: PolicyName, current: string | null): unknown {
  if (!(err instanceof IoasdError) || err.errno !== 'EBUSY') return err;
  const held = (err.blockers ?? []).map((b: Blocker) => `${b.kind} ${b.id} (${b.reason}${b.owner ? `, context ${b.owner}` : ''})`);
  const contexts = [...new Set((err.blockers ?? []).map((b) => b.owner).filter((o): o is string => o !== undefined))];
  const list = held.slice(0, SHOWN).join(', ') + (held.length > SHOWN ? ` and ${held.length - SHOWN} more` : '');
  const release = contexts.length > 0 ? `delete the context${contexts.length > 1 ? 's' : ''} holding them (ioasctl contexts delete ${contexts.slice(0, SHOWN).join(' / ')})` : 'release them';
  return new StartError(
    `--policy ${wanted} refused (the policy cannot change while anything is held): the ${current ?? 'current'} policy holds ${list}; ${release}, or start without --policy to keep ${current ?? 'the policy in force'}`,
  );
}

/** The port could not be bound: why, and what to do. */
export function listenFailed(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') return new StartError(`cannot listen on ${where}: the port is in use by another program (another ioasd?); stop it, or choose another port with --port/IOASD_PORT (0 picks a free one)`);
  if (code === 'EACCES') return new StartError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges); choose a port above 1023 with --port/IOASD_PORT`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartError(`cannot listen on ${where}: ${host} is not an address of this host; fix --host/IOASD_HOST (127.0.0.1, or 0.0.0.0 for every address)`);
  return err;
}

/** A topology file that cannot be read or is refused: the reader's message and where to fix it. */
export function topologyRefused(err: unknown): unknown {
  if (!(err instanceof IoasdError)) return err;
  const fix = err.errno === 'ENOENT' ? 'check the path given with --topology/IOASD_TOPOLOGY' : 'fix the document (the format is in docs/operations.md, "Topology documents")';
  return new StartError(`${err.message}; ${fix}`);
}

/** The files a start may create beside the database, and what was there before it. */
export interface StartFiles {
  dbExisted: boolean;
  dirExisted: boolean;
  /** admin.token's content before the start, or null when there was none. */
  tokenBefore: string | null;
}

function tokenFileOf(db: string): string {
  return join(dirname(db), 'admin.token');
}

export function noteStartFiles(db: string): StartFiles {
  const token = tokenFileOf(db);
  return { dbExisted: existsSync(db), dirExisted: existsSync(dirname(db)), tokenBefore: existsSync(token) ? readFileSync(token, 'utf8') : null };
}

/** After a refused start: removes the database, its journals and the token file it created, and its new directory if empty. */
export function removeNewFiles(db: string, before: StartFiles): void {
  if (db === ':memory:') return;
  if (!before.dbExisted) for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(db + suffix, { force: true });
  const token = tokenFileOf(db);
  if (before.tokenBefore === null) rmSync(token, { force: true });
  else if (existsSync(token) && readFileSync(token, 'utf8') !== before.tokenBefore) writeFileSync(token, before.tokenBefore, { mode: 0o600 });
  const dir = dirname(db);
  if (!before.dirExisted && existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}

/** The URL a person can open: a wildcard address is reached on the loopback one. */
export function publicUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

/** The one line a start ends with: where the API, the docs and the page are, and where the admin token is. */
export function readyLine(options: { url: string; allAddresses: boolean; db: string; tokenWritten: string | null; fixedToken: boolean }): string {
  const token = tokenFileOf(options.db);
  const where = options.tokenWritten
    ? `admin token written to ${options.tokenWritten} (first start; mode 0600)`
    : options.fixedToken
      ? 'admin token from IOASD_ADMIN_TOKEN'
      : existsSync(token)
        ? `admin token in ${token}`
        : `admin token not on disk (${token} was removed; restart with IOASD_ADMIN_TOKEN to set one)`;
  return `ioasd ready: API ${options.url}/v1, docs ${options.url}/docs, UI ${options.url}/ui${options.allAddresses ? ' (listening on every address)' : ''}; ${where}`;
}
