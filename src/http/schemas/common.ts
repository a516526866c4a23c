import { z } from 'zod';

/** Route metadata every operation carries, so the OpenAPI document reads well in Swagger UI. */
export function op(tag: string, operationId: string, summary: string) {
  return { tags: [tag], operationId, summary };
}

/**
 * A number in a URL (a path id or a query count): plain decimal only. `1` is accepted; `0x1`, `1e0`,
 * `+1`, ` 1` and `01` are 400 EINVAL, so every id has exactly one spelling in URLs, logs and audit.
 */
export function decimal(min: number, max: number) {
  return z
    .string()
    .max(String(max).length)
    .regex(/^(0|[1-9][0-9]*)$/, 'a plain decimal number (no sign, exponent, hex prefix or leading zero)')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

export const GroupIdParams = z.object({ id: decimal(0, 2 ** 31 - 1).meta({ description: 'group id (decimal)' }) });
export const StringIdParams = z.object({ id: z.string().min(1).max(128) });

/** Query booleans arrive as text. */
export const QueryBool = z.enum(['true', 'false']).transform((v) => v === 'true');

/**
 * Exactly one of several request shapes (JSON Schema `oneOf`). A body matching none is refused
 * with `hint` and the problems of the shape it came closest to (the one with the fewest).
 */
export function oneOf<const T extends readonly [z.ZodObject, z.ZodObject, ...z.ZodObject[]]>(options: T, hint: string) {
  return z.xor(options, {
    error: (issue) => {
      if (issue.code !== 'invalid_union' || !('errors' in issue) || issue.errors.length === 0) return undefined;
      const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0]!;
      const detail = closest.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join(', ');
      return `${hint} (closest: ${detail})`;
    },
  });
}
