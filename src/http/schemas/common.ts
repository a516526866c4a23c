import { z } from 'zod';

/** Route metadata every operation carries, so the OpenAPI document reads well in Swagger UI. */
export function op(tag: string, operationId: string, summary: string) {
  return { tags: [tag], operationId, summary };
}

export const GroupIdParams = z.object({ id: z.coerce.number().int().min(0).max(2 ** 31 - 1) });
export const StringIdParams = z.object({ id: z.string().min(1).max(128) });

/** Query booleans arrive as text. */
export const QueryBool = z.enum(['true', 'false']).transform((v) => v === 'true');
