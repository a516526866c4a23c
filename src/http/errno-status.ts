import { ERRNOS, type Errno } from '../core/errors.js';

/**
 * The one registry of wire errnos (SPEC 7): every errno a problem+json answer can carry, with its
 * title and how it travels over HTTP. The core's refusals come from core/errors.ts (the core never
 * sees a status); EAGAIN, ETIMEDOUT and EIO are the transport's own, the core never refuses with them:
 * a rate limit is the kernel's EAGAIN ("try again"), a client too slow to send its request ETIMEDOUT,
 * a commit the disk refused EIO (http/plugins/group-commit.ts).
 */
const TRANSPORT_ERRNOS = {
  EAGAIN: { title: 'Too many requests; try again later' },
  ETIMEDOUT: { title: 'Request timed out' },
  EIO: { title: 'The change could not be made durable; nothing of it was kept' },
} as const;

/** Every errno a problem+json answer can carry. */
export type WireErrno = Errno | keyof typeof TRANSPORT_ERRNOS;

export const ERRNO_STATUS: Readonly<Record<WireErrno, number>> = {
  EINVAL: 400,
  EOVERFLOW: 400,
  EACCES: 403,
  ENOENT: 404,
  ENODEV: 404,
  EPERM: 409,
  EBUSY: 409,
  EEXIST: 409,
  EADDRINUSE: 409,
  ENOSPC: 409,
  ENOMEM: 409,
  EOPNOTSUPP: 422,
  EAGAIN: 429,
  ETIMEDOUT: 408,
  EIO: 503,
};

/** Every wire errno with its title, in the order of the registry above. */
export const WIRE_ERRNOS: Readonly<Record<WireErrno, { title: string }>> = { ...ERRNOS, ...TRANSPORT_ERRNOS };

export function statusOf(errno: WireErrno): number {
  return ERRNO_STATUS[errno];
}

export function titleOf(errno: WireErrno): string {
  return WIRE_ERRNOS[errno].title;
}
