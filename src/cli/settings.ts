import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * Where ioasctl finds the server and the token, first match wins:
 *   1. flags: --server URL, --token TOKEN, --token-file FILE
 *   2. environment: IOASD_URL, IOASD_TOKEN, IOASD_TOKEN_FILE
 *   3. the config file: --config FILE, else IOASCTL_CONFIG, else $XDG_CONFIG_HOME/ioasctl/config.json
 *      (~/.config/ioasctl/config.json): {"server": "...", "token": "..."} or {"server": "...", "tokenFile": "..."}
 *      (a relative tokenFile is relative to the config file)
 *   4. the server defaults to http://127.0.0.1:8080; without a token only /healthz and /readyz answer.
 */
export interface Settings {
  server: string;
  token: string | undefined;
  /** Where the token came from, for messages (never the token itself). */
  tokenSource: string;
  /** Warnings worth telling the user (a config file others can read). */
  warnings: string[];
}

export interface SettingsInput {
  server?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  config?: string | undefined;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export class SettingsError extends Error {}

export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'ioasctl', 'config.json');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function readToken(file: string): string {
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token === '') throw new SettingsError(`token file ${file} is empty`);
    return token;
  } catch (err) {
    if (err instanceof SettingsError) throw err;
    throw new SettingsError(`cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

interface ConfigFile {
  server?: string;
  token?: string;
  tokenFile?: string;
}

function readConfig(path: string, explicit: boolean): { config: ConfigFile; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // The default file is optional; one named by --config or IOASCTL_CONFIG must exist.
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, warnings: [] };
    throw new SettingsError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new SettingsError(`config file ${path} is not JSON: ${(err as Error).message}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new SettingsError(`config file ${path} must hold a JSON object`);
  const c = config as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!['server', 'token', 'tokenFile'].includes(key)) throw new SettingsError(`config file ${path}: unknown key ${JSON.stringify(key)} (known: server, token, tokenFile)`);
    if (typeof c[key] !== 'string') throw new SettingsError(`config file ${path}: ${key} must be a string`);
  }
  const warnings: string[] = [];
  if (typeof c.token === 'string' && (statSync(path).mode & 0o077) !== 0) {
    warnings.push(`config file ${path} holds a token and others can read it: chmod 600 ${path}`);
  }
  const out: ConfigFile = { ...(c as ConfigFile) };
  if (out.tokenFile !== undefined) out.tokenFile = resolve(dirname(path), out.tokenFile);
  return { config: out, warnings };
}

export function resolveSettings(input: SettingsInput, env: NodeJS.ProcessEnv): Settings {
  const explicitConfig = nonEmpty(input.config) ?? nonEmpty(env.IOASCTL_CONFIG);
  const { config, warnings } = readConfig(explicitConfig ?? defaultConfigPath(env), explicitConfig !== undefined);
  const configName = explicitConfig ?? defaultConfigPath(env);

  const server = nonEmpty(input.server) ?? nonEmpty(env.IOASD_URL) ?? nonEmpty(config.server) ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new SettingsError(`server ${JSON.stringify(server)} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SettingsError(`server ${server}: only http and https are supported`);

  let token: string | undefined;
  let tokenSource = 'none';
  const candidates: [string | undefined, 'value' | 'file', string][] = [
    [nonEmpty(input.token), 'value', '--token'],
    [nonEmpty(input.tokenFile), 'file', '--token-file'],
    [nonEmpty(env.IOASD_TOKEN), 'value', 'IOASD_TOKEN'],
    [nonEmpty(env.IOASD_TOKEN_FILE), 'file', 'IOASD_TOKEN_FILE'],
    [nonEmpty(config.token), 'value', `${configName} (token)`],
    [nonEmpty(config.tokenFile), 'file', `${configName} (tokenFile)`],
  ];
  for (const [value, kind, source] of candidates) {
    if (value === undefined) continue;
    token = kind === 'value' ? value : readToken(value);
    tokenSource = kind === 'value' ? source : `${source}: ${value}`;
    break;
  }
  return { server: server.replace(/\/+$/, ''), token, tokenSource, warnings };
}
