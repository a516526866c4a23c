import { z } from 'zod';
import { ERRNOS } from '../../core/errors.js';

export const ErrnoSchema = z.enum(Object.keys(ERRNOS) as [keyof typeof ERRNOS, ...(keyof typeof ERRNOS)[]]);

export const BlockerSchema = z
  .object({
    kind: z.string(),
    id: z.string(),
    reason: z.string(),
    owner: z.string().optional().meta({ description: 'owning context, or "other" for another principal\'s' }),
  })
  .meta({ id: 'Blocker' });

/** RFC 9457 problem details, with ioasd's errno, blockers and per-field problems as extensions. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    errno: ErrnoSchema,
    instance: z.string().optional(),
    requestId: z.string().optional(),
    blockers: z.array(BlockerSchema).optional(),
    problems: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'application/problem+json' });

export type Problem = z.output<typeof ProblemSchema>;

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'EINVAL or EOVERFLOW: malformed request or refused by a rule',
  401: 'EACCES: no valid bearer token',
  403: 'EACCES: admin route, or no clearance for a label',
  404: 'ENOENT or ENODEV: no such object (or not yours)',
  409: 'EPERM, EBUSY, EEXIST, EADDRINUSE, ENOSPC or ENOMEM: refused by the current state',
  422: 'EOPNOTSUPP: not supported under this policy or iommu',
};

interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: typeof ProblemSchema } };
}

/**
 * Response entries for the problem statuses a route can answer, documented as problem+json.
 * Problems are sent with a plain JSON serializer (http/errors.ts), so these only document.
 */
export function problemResponses(...statuses: (keyof typeof PROBLEM_DESCRIPTIONS)[]): Record<number, ProblemResponse> {
  const out: Record<number, ProblemResponse> = {};
  for (const s of statuses) out[s] = { description: PROBLEM_DESCRIPTIONS[s]!, content: { 'application/problem+json': { schema: ProblemSchema } } };
  return out;
}
