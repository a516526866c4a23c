import Table from 'cli-table3';
import type { Problem } from './client.js';

/**
 * Human output: lists as borderless tables with upper-case headers (as kubectl prints them), one
 * object as a two-column field/value table, dry runs as their effects. No colours, no trailing
 * spaces, so the output reads the same in a terminal, a log and the README.
 */

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '',
  right: '', 'right-mid': '', middle: '  ',
};

function table(head: string[] | undefined, rows: string[][]): string {
  const t = new Table({ chars: BORDERLESS, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 }, ...(head ? { head } : {}) });
  t.push(...rows);
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A blocker in words: `device 0000:01:00.1: bound to kernel driver snd_hda_intel (owner other)`. */
export function blockerText(b: { kind?: unknown; id?: unknown; reason?: unknown; owner?: unknown }): string {
  return `${String(b.kind)} ${String(b.id)}: ${String(b.reason)}${b.owner !== undefined && b.owner !== null ? ` (owner ${String(b.owner)})` : ''}`;
}

/** One cell: scalars as they are, lists one item a line, objects as `key=value` pairs. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v === '' ? '""' : v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '-';
    if (v.every((x) => !isRecord(x) && !Array.isArray(x))) return v.map(cell).join(', ');
    return v.map((x) => (isRecord(x) && 'kind' in x && 'reason' in x ? blockerText(x) : cell(x))).join('\n');
  }
  if (isRecord(v)) {
    const entries = Object.entries(v);
    if (entries.length === 0) return '-';
    if ('start' in v && 'last' in v && entries.length <= 3) return `${cell(v.start)}-${cell(v.last)}${v.type !== undefined ? ` ${cell(v.type)}` : ''}`;
    const value = (x: unknown): string =>
      Array.isArray(x) && x.length === 0 ? '-' : Array.isArray(x) && x.every((y) => !isRecord(y) && !Array.isArray(y)) ? x.map(cell).join(',') : isRecord(x) || Array.isArray(x) ? JSON.stringify(x) : cell(x);
    return entries.map(([k, x]) => `${k}=${value(x)}`).join(' ');
  }
  return String(v);
}

function header(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Rows of objects as a table; `columns` picks and orders them (default: every key, in first-seen order). */
export function listTable(rows: unknown[], columns?: readonly string[]): string {
  if (rows.length === 0) return '(none)';
  if (!rows.every(isRecord)) return rows.map(cell).join('\n');
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  // A column that is an empty list in every row (no warnings anywhere) says nothing.
  const empty = (c: string) => rows.every((r) => Array.isArray(r[c]) && (r[c] as unknown[]).length === 0 && c !== 'blockers');
  const cols = (columns ? columns.filter((c) => keys.includes(c)) : keys).filter((c) => !empty(c));
  return table(cols.map(header), rows.map((r) => cols.map((c) => cell(r[c]))));
}

/** One object as field / value rows; nested objects as `parent.child` rows. */
export function objectTable(obj: Record<string, unknown>): string {
  const rows: string[][] = [];
  const walk = (prefix: string, o: Record<string, unknown>): void => {
    for (const [k, v] of Object.entries(o)) {
      const key = prefix ? `${prefix}.${k}` : k;
      const range = isRecord(v) && 'start' in v && 'last' in v;
      if (isRecord(v) && !range && Object.keys(v).length > 0) walk(key, v);
      else rows.push([key, cell(v)]);
    }
  };
  walk('', obj);
  return table(undefined, rows);
}

/** A dry run's answer: what would happen. */
export function dryRunText(body: { effects: unknown[] } & Record<string, unknown>): string {
  const rest = Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'dryRun' && k !== 'effects'));
  const lines = ['dry run: nothing was changed; the call would succeed.'];
  if (Object.keys(rest).length > 0) lines.push(objectTable(rest));
  if (body.effects.length === 0) lines.push('effects: none');
  else {
    lines.push('effects:');
    for (const e of body.effects) {
      if (!isRecord(e)) continue;
      const { kind, ...fields } = e;
      lines.push(`  ${String(kind)}  ${cell(fields).replace(/\n/g, '; ')}`);
    }
  }
  return lines.join('\n');
}

/** Any answer body in human form. */
export function render(body: unknown, columns?: readonly string[]): string {
  if (body === undefined) return 'done';
  if (Array.isArray(body)) return listTable(body, columns);
  if (isRecord(body)) {
    if (body.dryRun === true && Array.isArray(body.effects)) return dryRunText(body as { effects: unknown[] });
    if (Array.isArray(body.items) && 'nextCursor' in body) {
      const more = body.nextCursor === null ? '' : `\nnext page: --cursor ${String(body.nextCursor)}`;
      return listTable(body.items, columns) + more;
    }
    return objectTable(body);
  }
  return String(body);
}

/** A refusal for people: the sentence, each blocker and each failing field on a line of its own. */
export function problemText(p: Problem, summary: string): string {
  const lines = [`refused: ${summary}`];
  for (const b of p.blockers ?? []) lines.push(`  blocker: ${blockerText(b)}`);
  for (const x of p.problems ?? []) lines.push(`  problem: ${x.path}: ${x.message}`);
  if (p.requestId) lines.push(`  request id: ${p.requestId}`);
  return lines.join('\n');
}
