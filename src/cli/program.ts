import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { CliError, Client, type Problem } from './client.js';
import { pathSegment, type Context, type Io } from './context.js';
import { COMPOSITE_COMMANDS, flagOf, kebab, shapeOf, type CommandShape } from './commands.js';
import { backupCommand } from './backup.js';
import { followEvents } from './events.js';
import { EXIT, exitTableText, type ExitCode } from './exit-codes.js';
import { problemText, render } from './output.js';
import { resolveSettings, SettingsError, type Settings } from './settings.js';
import { admits, operationsOf, type BodyField, type JsonSchema, type OpenApiDocument, type Operation, type Param } from './spec.js';
import { whyCommand } from './why.js';

export interface GlobalOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
  config?: string;
  json?: boolean;
}

export const DESCRIPTION = 'The command-line client of ioasd: IOMMU groups, address spaces and DMA ownership.';

export const AFTER_HELP = `
Every API operation is a command: ioasctl <resource> <verb> [ARGS] [--flags]
(ioasctl <resource> --help lists its verbs). Answers print as tables; --json
prints the answer's JSON as the API sends it, a refusal too (its problem+json
document, on standard output), and events as NDJSON.

Server and token, first match wins:
  --server URL, --token TOKEN, --token-file FILE
  IOASD_URL, IOASD_TOKEN, IOASD_TOKEN_FILE
  a config file: --config FILE, IOASCTL_CONFIG, or ~/.config/ioasctl/config.json
    {"server": "http://127.0.0.1:8080", "tokenFile": "/var/lib/ioasd/admin.token"}
  the server defaults to http://127.0.0.1:8080

Exit status:
${exitTableText()}

Examples:
  ioasctl groups list
  ioasctl why 0000:01:00.0
  ioasctl devices bind 0000:01:00.0 --context ctx-1 --dry-run
  ioasctl --json events --after 0 | jq -c .type
`;

/** The package's version (ioasctl ships with the server it was built with). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A value from the command line, typed by the field's schema; the server stays the judge of it. */
function parseScalar(raw: string, schema: JsonSchema): unknown {
  if (raw === 'null' && admits(schema, 'null')) return null;
  if (admits(schema, 'string') || schema.enum !== undefined) return raw;
  if ((admits(schema, 'integer') || admits(schema, 'number')) && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (admits(schema, 'boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
  if (admits(schema, 'object') || admits(schema, 'array')) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new CliError(`${JSON.stringify(raw)} is not JSON`, EXIT.usage);
    }
  }
  return raw;
}

const isBoolean = (s: JsonSchema): boolean => admits(s, 'boolean') && !admits(s, 'string');
const isScalarList = (s: JsonSchema): boolean => admits(s, 'array') && s.items !== undefined && !admits(s.items, 'object') && !admits(s.items, 'array');
const isQueryBool = (p: Param): boolean => Array.isArray(p.schema.enum) && p.schema.enum.length === 2 && p.schema.enum.includes('true') && p.schema.enum.includes('false');

function describe(schema: JsonSchema, fallback?: string): string {
  const text = schema.description ?? fallback ?? '';
  const hint = admits(schema, 'object') || (admits(schema, 'array') && !isScalarList(schema)) ? ' (JSON)' : isScalarList(schema) ? ' (comma-separated or repeated)' : '';
  return `${text}${hint}`.trim();
}

/** One flag for a body field or query parameter. */
function optionFor(name: string, schema: JsonSchema, description: string | undefined, queryBool: boolean): Option {
  const flag = flagOf(name);
  if (queryBool) return new Option(`--${flag}`, description ?? '');
  if (isBoolean(schema)) {
    return schema.default === true ? new Option(`--no-${flag}`, `${description ?? ''} (default: true)`.trim()) : new Option(`--${flag}`, description ?? '');
  }
  const option = new Option(`--${flag} <${admits(schema, 'object') ? 'json' : 'value'}>`, describe(schema, description));
  if (Array.isArray(schema.enum) && schema.enum.every((e) => typeof e === 'string')) option.choices(schema.enum as string[]);
  if (isScalarList(schema)) {
    option.argParser((value: string, previous: unknown[] | undefined) => [
      ...(previous ?? []),
      ...value
        .split(',')
        .filter((v) => v !== '')
        .map((v) => parseScalar(v, schema.items!)),
    ]);
  }
  return option;
}

function readBodyFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`${file} is not JSON: ${(err as Error).message}`, EXIT.usage);
  }
}

/** The path with its parameters filled in, each URL-encoded. */
function fillPath(op: Operation, values: string[]): string {
  let i = 0;
  return op.path.replace(/\{[^}]+\}/g, () => pathSegment(values[i++] ?? ''));
}

/** Prints a refusal or failure and returns the exit status. */
export function report(ctx: Context, err: unknown): ExitCode {
  if (err instanceof CliError) {
    if (err.problem && ctx.json) ctx.io.out(JSON.stringify(err.problem, null, 2) + '\n');
    else if (err.problem) ctx.io.err(problemText(err.problem as Problem, err.message) + '\n');
    else ctx.io.err(`ioasctl: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof SettingsError) {
    ctx.io.err(`ioasctl: ${err.message}\n`);
    return EXIT.usage;
  }
  throw err;
}

/** What one operation's command does: build the request from its arguments, send it, print the answer. */
async function runOperation(ctx: Context, op: Operation, shape: CommandShape, cmd: Command, positionals: string[]): Promise<void> {
  const opts = cmd.opts<Record<string, unknown>>();
  const pathValues = positionals.slice(0, op.pathParams.length);
  let rest = positionals.slice(op.pathParams.length);

  const query: Record<string, string> = {};
  if (op.dryRun && opts.dryRun === true) query.dryRun = 'true';
  for (const p of op.queryParams) {
    const v = opts[attribute(p.name)];
    if (v === undefined) continue;
    query[p.name] = v === true ? 'true' : String(v);
  }

  let body: Record<string, unknown> | undefined;
  if (op.body) {
    if (shape.bodyFile) {
      body = readBodyFile(rest[0]!);
      rest = rest.slice(1);
    } else {
      body = typeof opts.file === 'string' ? readBodyFile(opts.file) : {};
    }
    (shape.args ?? []).forEach((name, i) => {
      const field = op.body!.fields.find((f) => f.name === name);
      if (rest[i] !== undefined && field) body![name] = parseScalar(rest[i]!, field.schema);
    });
    for (const f of op.body.fields) {
      if ((shape.args ?? []).includes(f.name)) continue;
      const v = opts[attribute(f.name)];
      if (v === undefined || cmd.getOptionValueSource(attribute(f.name)) !== 'cli') continue;
      body[f.name] = typeof v === 'string' ? parseScalar(v, f.schema) : v;
    }
    if (!shape.bodyFile) {
      const missing = op.body.fields.filter((f) => f.required && body![f.name] === undefined && !(shape.args ?? []).includes(f.name));
      if (missing.length > 0) throw new CliError(`missing ${missing.map((f) => `--${flagOf(f.name)}`).join(', ')} (or give the body with --file)`, EXIT.usage);
    }
  }

  const answer = await ctx.client().request(op.method, fillPath(op, pathValues), {
    query,
    body,
    idempotencyKey: typeof opts.idempotencyKey === 'string' ? opts.idempotencyKey : undefined,
  });
  if (answer.replayed) ctx.io.err('note: replayed: this is the first answer to this Idempotency-Key; nothing changed now\n');
  if (ctx.json) {
    if (answer.body !== undefined) ctx.io.out(JSON.stringify(answer.body, null, 2) + '\n');
    return;
  }
  if (answer.body === undefined) ctx.io.out(`${[...shape.words, ...positionals].join(' ')}: done\n`);
  else ctx.io.out(render(answer.body, shape.columns) + '\n');
}

/** Commander's attribute for a field's flag (`--user-address` -> userAddress, `--no-read` -> read). */
function attribute(field: string): string {
  return flagOf(field).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function fieldArgument(f: BodyField | undefined, name: string): string {
  const label = kebab(flagOf(name));
  return f?.required ? `<${label}>` : `[${label}]`;
}

/** Builds every command from the document; `commands` maps each operationId to its command (tests). */
export function buildProgram(doc: OpenApiDocument, io: Io, run: { exit: (code: ExitCode) => void }): { program: Command; commands: Map<string, Command> } {
  const program = new Command('ioasctl');
  program
    .description(DESCRIPTION)
    .version(packageVersion(), '-V, --version', 'print ioasctl\'s version')
    .option('-s, --server <url>', 'the ioasd server (default http://127.0.0.1:8080)')
    .option('-t, --token <token>', 'bearer token')
    .option('--token-file <file>', 'read the bearer token from this file (e.g. data/admin.token)')
    .option('-c, --config <file>', 'config file (default ~/.config/ioasctl/config.json)')
    .option('--json', 'print JSON answers (NDJSON for events) instead of tables')
    .addHelpText('after', AFTER_HELP)
    .showHelpAfterError('(ioasctl --help lists every command)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();

  const context = (cmd: Command): Context => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    let settings: Settings | undefined;
    const getSettings = (): Settings => {
      if (!settings) {
        settings = resolveSettings({ server: g.server, token: g.token, tokenFile: g.tokenFile, config: g.config }, io.env);
        for (const w of settings.warnings) io.err(`ioasctl: warning: ${w}\n`);
      }
      return settings;
    };
    let client: Client | undefined;
    return { io, json: g.json === true, settings: getSettings, client: () => (client ??= new Client(getSettings())) };
  };
  const action =
    (body: (ctx: Context, cmd: Command, positionals: string[]) => Promise<ExitCode | void>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const ctx = context(cmd);
      try {
        run.exit((await body(ctx, cmd, cmd.args)) ?? EXIT.ok);
      } catch (err) {
        run.exit(report(ctx, err));
      }
    };

  const groups = new Map<string, Command>();
  const commands = new Map<string, Command>();
  for (const op of operationsOf(doc)) {
    const shape = shapeOf(op);
    let parent = program;
    for (const word of shape.words.slice(0, -1)) {
      let group = groups.get(word);
      if (!group) {
        group = program.command(word);
        groups.set(word, group);
      }
      parent = group;
    }
    const cmd = parent.command(shape.words[shape.words.length - 1]!).description(`${op.summary}\n(${op.method} ${op.path}, operation ${op.operationId})`);
    for (const p of op.pathParams) cmd.argument(`<${kebab(p.name)}>`, p.description ?? '');
    if (shape.bodyFile) cmd.argument('<file>', 'JSON body (- for standard input)');
    for (const name of shape.args ?? []) {
      const f = op.body?.fields.find((x) => x.name === name);
      cmd.argument(fieldArgument(f, name), f?.schema.description ?? '');
    }
    for (const p of op.queryParams) cmd.addOption(optionFor(p.name, p.schema, p.description, isQueryBool(p)));
    for (const f of op.body?.fields ?? []) {
      if (!(shape.args ?? []).includes(f.name)) cmd.addOption(optionFor(f.name, f.schema, f.schema.description, false));
    }
    if (op.body && !shape.bodyFile) cmd.option('-f, --file <file>', 'the JSON body from a file (- for standard input); flags override its fields');
    if (op.dryRun) cmd.option('--dry-run', 'answer what the call would do (its refusal or its effects), changing nothing');
    if (op.idempotent) cmd.option('--idempotency-key <key>', 'a retry with the same key gets the first answer and changes nothing (24 h)');
    if (shape.custom === 'events') {
      cmd.option('--count <n>', 'stop after this many events', (v) => Number(v));
      cmd.action(action((ctx, c) => followEvents(ctx, c.opts())));
    } else if (shape.custom === 'backup') {
      cmd.requiredOption('-o, --output <file>', 'where to write the database copy (written whole, then renamed into place)');
      cmd.action(action((ctx, c) => backupCommand(ctx, c.opts())));
    } else {
      cmd.action(action(async (ctx, c, positionals) => runOperation(ctx, op, shape, c, positionals)));
    }
    commands.set(op.operationId, cmd);
  }
  for (const name of COMPOSITE_COMMANDS) {
    if (name === 'why') {
      program
        .command('why')
        .description('Explain in plain words whether you can take a device now and, if not, every blocker and what would fix it')
        .argument('<device>', 'device id, e.g. 0000:01:00.0')
        .option('--context <id>', 'the context to try it in (default: the one holding its group, else your first, else a temporary one)')
        .action(action((ctx, c, positionals) => whyCommand(ctx, positionals[0]!, c.opts())));
    }
  }
  for (const [word, group] of groups) {
    group.description(`${word}: ${group.commands.map((c) => c.name()).join(', ')}`);
  }
  return { program, commands };
}

/** Runs ioasctl with these arguments; resolves to the exit status. */
export async function main(doc: OpenApiDocument, argv: string[], io: Io): Promise<ExitCode> {
  let code: ExitCode = EXIT.ok;
  const { program } = buildProgram(doc, io, { exit: (c) => (code = c) });
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  return code;
}
