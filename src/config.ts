import { parseArgs } from 'node:util';
import type { PolicyName } from './core/model.js';
import { POLICIES } from './core/model.js';
import { DEFAULT_RATE_LIMIT, formatRateLimit, parseRateLimit, type RateLimit } from './http/plugins/rate-limit.js';

export interface Config {
  host: string;
  port: number;
  db: string;
  policy: PolicyName | undefined;
  topology: string | undefined;
  sysfs: string | undefined;
  /** procfs to read the kernel command line from (with --sysfs). */
  proc: string;
  logLevel: string;
  adminToken: string | undefined;
  ioasidRange: { min: number; max: number };
  /** Requests per principal per window; null: no limit. */
  rateLimit: RateLimit | null;
}

/** Each option is a flag and an IOASD_* variable; the flag wins. */
const OPTIONS = {
  host: { env: 'IOASD_HOST', help: 'address to listen on (default 127.0.0.1)' },
  port: { env: 'IOASD_PORT', help: 'port; 0 picks a free one (default 8080)' },
  db: { env: 'IOASD_DB', help: 'SQLite file (default ./data/ioasd.db)' },
  policy: { env: 'IOASD_POLICY', help: 'group-first | device-first (default device-first on a new database)' },
  topology: { env: 'IOASD_TOPOLOGY', help: 'load the inventory from this JSON topology document' },
  sysfs: { env: 'IOASD_SYSFS', help: 'load the inventory from this sysfs tree (e.g. /sys)' },
  proc: { env: 'IOASD_PROC', help: 'with --sysfs: procfs for the kernel command line (default /proc)' },
  'log-level': { env: 'IOASD_LOG_LEVEL', help: 'fatal | error | warn | info | debug | trace | silent (default info)' },
  'ioasid-range': { env: 'IOASD_IOASID_RANGE', help: 'MIN-MAX: the IOASIDs ioas and hwpt ids come from (default 1-2147483647)' },
  'rate-limit': { env: 'IOASD_RATE_LIMIT', help: `MAX/WINDOW requests per principal, e.g. 100/1s, or off (default ${formatRateLimit(DEFAULT_RATE_LIMIT)})` },
} as const;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export class ConfigError extends Error {}

export const USAGE = `usage: ioasd [options]\n${Object.entries(OPTIONS)
  .map(([flag, o]) => `  --${flag.padEnd(13)} ${o.env.padEnd(19)} ${o.help}`)
  .join('\n')}\n  IOASD_ADMIN_TOKEN: use this as the admin token instead of generating one`;

/** Reads and validates the configuration; a bad value is a {@link ConfigError} naming it. */
export function readConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }]));
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help) return 'help';
  const get = (flag: keyof typeof OPTIONS): string | undefined => {
    const v = (values[flag] as string | undefined) ?? env[OPTIONS[flag].env];
    return v === undefined || v === '' ? undefined : v;
  };

  const portText = get('port') ?? '8080';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new ConfigError(`--port/IOASD_PORT: ${portText} is not a port number (0-65535)`);

  const policy = get('policy');
  if (policy !== undefined && !POLICIES.includes(policy as PolicyName)) {
    throw new ConfigError(`--policy/IOASD_POLICY: ${policy} is not one of ${POLICIES.join(', ')}`);
  }
  const logLevel = get('log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`--log-level/IOASD_LOG_LEVEL: ${logLevel} is not one of ${[...LOG_LEVELS].join(', ')}`);

  const topology = get('topology');
  const sysfs = get('sysfs');
  if (topology !== undefined && sysfs !== undefined) throw new ConfigError('--topology and --sysfs cannot both be given');

  const rangeText = get('ioasid-range') ?? '1-2147483647';
  const range = /^(\d+)-(\d+)$/.exec(rangeText);
  const ioasidRange = range ? { min: Number(range[1]), max: Number(range[2]) } : undefined;
  if (!ioasidRange || ioasidRange.min < 1 || ioasidRange.max < ioasidRange.min || ioasidRange.max > 2 ** 32 - 1) {
    throw new ConfigError(`--ioasid-range/IOASD_IOASID_RANGE: ${rangeText} is not MIN-MAX with 1 <= MIN <= MAX <= 4294967295`);
  }

  const rateText = get('rate-limit');
  const rateLimit = rateText === undefined ? DEFAULT_RATE_LIMIT : parseRateLimit(rateText);
  if (rateLimit === undefined) throw new ConfigError(`--rate-limit/IOASD_RATE_LIMIT: ${rateText} is not MAX/WINDOW (e.g. 6000/1m, 100/1s, 50/500ms) or off`);

  const adminToken = env.IOASD_ADMIN_TOKEN === '' ? undefined : env.IOASD_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken.length < 16) throw new ConfigError('IOASD_ADMIN_TOKEN must be at least 16 characters');

  return {
    host: get('host') ?? '127.0.0.1',
    port,
    db: get('db') ?? './data/ioasd.db',
    policy: policy as PolicyName | undefined,
    topology,
    sysfs,
    proc: get('proc') ?? '/proc',
    logLevel,
    adminToken,
    ioasidRange,
    rateLimit,
  };
}
