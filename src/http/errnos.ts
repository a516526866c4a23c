import { ERRNOS, type Errno } from '../core/errors.js';

/**
 * Errnos only the HTTP transport answers with: the core never refuses with them. A rate limit is
 * the kernel's EAGAIN ("try again"), a client too slow to send its request ETIMEDOUT.
 */
export const TRANSPORT_ERRNOS = {
  EAGAIN: { status: 429, title: 'Too many requests; try again later' },
  ETIMEDOUT: { status: 408, title: 'Request timed out' },
} as const;

/** Every errno a problem+json answer can carry. */
export type WireErrno = Errno | keyof typeof TRANSPORT_ERRNOS;

export const WIRE_ERRNOS: Record<WireErrno, { status: number; title: string }> = { ...ERRNOS, ...TRANSPORT_ERRNOS };

/**
 * A refusal decided by the HTTP layer itself (a limit, a media type, a method), with the status it
 * answers and the errno clients match on. The error handler turns it into problem+json.
 */
export class HttpRefusal extends Error {
  constructor(
    readonly statusCode: number,
    readonly errno: WireErrno,
    detail: string,
    readonly problems?: { path: string; message: string }[],
  ) {
    super(detail);
    this.name = 'HttpRefusal';
  }
}
