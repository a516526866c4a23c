import type { Errno } from '../core/errors.js';

/** How each errno travels over HTTP (SPEC 7). The core never sees a status. */
export const ERRNO_STATUS: Readonly<Record<Errno, number>> = {
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
};

export function statusOf(errno: Errno): number {
  return ERRNO_STATUS[errno];
}
