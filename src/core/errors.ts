/**
 * The one registry of refusals. Every layer throws {@link IoasdError}; the HTTP layer maps it to
 * problem+json with the status below. Clients match on `errno`, the kernel's name for the same refusal.
 */
export const ERRNOS = {
  EINVAL: { status: 400, title: 'Invalid argument' },
  EOVERFLOW: { status: 400, title: 'Value too large' },
  EACCES: { status: 403, title: 'Permission denied' },
  ENOENT: { status: 404, title: 'No such object' },
  ENODEV: { status: 404, title: 'No such device' },
  EPERM: { status: 409, title: 'Operation not permitted' },
  EBUSY: { status: 409, title: 'Resource busy' },
  EEXIST: { status: 409, title: 'Already exists' },
  EADDRINUSE: { status: 409, title: 'Address range in use' },
  ENOSPC: { status: 409, title: 'No space left' },
  ENOMEM: { status: 409, title: 'Out of memory quota' },
  EOPNOTSUPP: { status: 422, title: 'Operation not supported' },
} as const;

export type Errno = keyof typeof ERRNOS;

/** Who or what stands in the way of a refused change, so a user can fix it without an admin. */
export interface Blocker {
  kind: 'device' | 'group' | 'context' | 'ioas' | 'hwpt' | 'principal' | 'driver' | 'label';
  id: string;
  reason: string;
  /** Owning context, or "other" when it belongs to another principal. */
  owner?: string;
}

/** One failing field of a refused document or request body. */
export interface FieldProblem {
  path: string;
  message: string;
}

export class IoasdError extends Error {
  readonly errno: Errno;
  readonly blockers: Blocker[] | undefined;
  readonly problems: FieldProblem[] | undefined;

  constructor(errno: Errno, detail: string, extra: { blockers?: Blocker[]; problems?: FieldProblem[] } = {}) {
    super(detail);
    this.name = 'IoasdError';
    this.errno = errno;
    this.blockers = extra.blockers;
    this.problems = extra.problems;
  }

  get status(): number {
    return ERRNOS[this.errno].status;
  }
}

/** Shorthand that reads like the kernel's `return -EINVAL;`. */
export function fail(errno: Errno, detail: string, extra?: { blockers?: Blocker[]; problems?: FieldProblem[] }): never {
  throw new IoasdError(errno, detail, extra);
}
