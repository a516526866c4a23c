/**
 * The one registry of refusals. Every layer throws {@link IoasdError}; clients match on `errno`, the
 * kernel's name for the same refusal. How an errno travels over HTTP (its status) is the HTTP
 * layer's business: src/http/errno-status.ts.
 */
export const ERRNOS = {
  EINVAL: { title: 'Invalid argument' },
  EOVERFLOW: { title: 'Value too large' },
  EACCES: { title: 'Permission denied' },
  ENOENT: { title: 'No such object' },
  ENODEV: { title: 'No such device' },
  EPERM: { title: 'Operation not permitted' },
  EBUSY: { title: 'Resource busy' },
  EEXIST: { title: 'Already exists' },
  EADDRINUSE: { title: 'Address range in use' },
  ENOSPC: { title: 'No space left' },
  ENOMEM: { title: 'Out of memory quota' },
  EOPNOTSUPP: { title: 'Operation not supported' },
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
}

/** Shorthand that reads like the kernel's `return -EINVAL;`. */
export function fail(errno: Errno, detail: string, extra?: { blockers?: Blocker[]; problems?: FieldProblem[] }): never {
  throw new IoasdError(errno, detail, extra);
}
