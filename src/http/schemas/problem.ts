import { z } from 'zod';
import { WIRE_ERRNOS, type WireErrno } from '../errno-status.js';

export const ErrnoSchema = z.enum(Object.keys(WIRE_ERRNOS) as [WireErrno, ...WireErrno[]]);

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
    status: z.number().int().min(400).max(599),
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
  405: 'EOPNOTSUPP: the path exists but not with this method (the Allow header lists those it has)',
  408: 'ETIMEDOUT: the request did not arrive in time',
  413: 'EINVAL: the body is larger than the limit',
  414: 'EINVAL: the URL or a path parameter is too long',
  415: 'EINVAL: the body is not JSON in UTF-8',
  422: 'EOPNOTSUPP: not supported under this policy or iommu',
  429: 'EAGAIN: too many requests from this principal; retry after the Retry-After header\'s seconds',
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
