import type { z } from 'zod';
import { fail, type Errno, type FieldProblem } from '../core/errors.js';

/** Field path as the problem documents spell it: `devices[2].groupId`. */
export function fieldPath(path: readonly PropertyKey[], root = ''): string {
  let out = root;
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  return out === '' ? '(root)' : out;
}

interface IssueLike {
  params?: unknown;
  /** A union's issues, one list per option tried. */
  errors?: unknown;
}

function overflows(i: IssueLike): boolean {
  if ((i.params as { errno?: string } | undefined)?.errno === 'EOVERFLOW') return true;
  return Array.isArray(i.errors) && i.errors.some((option) => Array.isArray(option) && (option as IssueLike[]).some(overflows));
}

/** The errno a failed parse stands for: EOVERFLOW when a u64 was too large (in any union option too), else EINVAL. */
export function errnoOfIssues(issues: readonly IssueLike[]): Errno {
  return issues.some(overflows) ? 'EOVERFLOW' : 'EINVAL';
}

/** Parses with a zod schema, or refuses with every failing field listed (400). */
export function parseOrFail<S extends z.ZodType>(schema: S, data: unknown, what: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems: FieldProblem[] = result.error.issues.map((i) => ({ path: fieldPath(i.path), message: i.message }));
  fail(errnoOfIssues(result.error.issues as { params?: unknown }[]), `${what} refused: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
}
