/**
 * ioasctl's exit status says what a script should do next, one class of errno per status:
 * fix the request (2), re-list because the object is gone (3), get a token or a clearance (4),
 * resolve the blockers or wait for them (5), free resources or raise a quota (6), use the other
 * policy or a capable iommu (7), retry later with the same Idempotency-Key (8).
 */
export const EXIT = {
  ok: 0,
  usage: 1,
  invalid: 2,
  notFound: 3,
  access: 4,
  conflict: 5,
  quota: 6,
  unsupported: 7,
  server: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Every errno the service answers, with its exit status. */
export const ERRNO_EXIT: Readonly<Record<string, ExitCode>> = {
  EINVAL: EXIT.invalid,
  EOVERFLOW: EXIT.invalid,
  ENOENT: EXIT.notFound,
  ENODEV: EXIT.notFound,
  EACCES: EXIT.access,
  EPERM: EXIT.conflict,
  EBUSY: EXIT.conflict,
  EEXIST: EXIT.conflict,
  EADDRINUSE: EXIT.conflict,
  ENOSPC: EXIT.quota,
  ENOMEM: EXIT.quota,
  EOPNOTSUPP: EXIT.unsupported,
};

/** The table shown by `ioasctl --help` and in the README (a test keeps the two the same). */
export const EXIT_TABLE: readonly { status: ExitCode; when: string; next: string }[] = [
  { status: 0, when: 'success (also a dry run that would succeed; `why`: the device can be taken)', next: '' },
  { status: 1, when: 'usage: unknown command or flag, missing argument, unreadable file, bad config', next: 'see --help' },
  { status: 2, when: 'EINVAL, EOVERFLOW (and 413/414/415): the request is malformed or breaks a rule', next: 'fix the request' },
  { status: 3, when: 'ENOENT, ENODEV: no such object, or not yours', next: 're-list; the object is gone' },
  { status: 4, when: 'EACCES: no or bad token (401), admin route or missing clearance (403)', next: 'check the token; ask for a clearance' },
  { status: 5, when: 'EPERM, EBUSY, EEXIST, EADDRINUSE: the current state is in the way', next: 'resolve the blockers, or wait' },
  { status: 6, when: 'ENOSPC, ENOMEM: a quota is used up', next: 'free something, or ask for a larger quota' },
  { status: 7, when: 'EOPNOTSUPP: not under the policy in force, or not on this iommu', next: 'use the other policy\'s commands' },
  { status: 8, when: 'server or network: cannot connect, timeout, 5xx, 429, an answer that is not problem+json', next: 'retry (with the same --idempotency-key)' },
];

/** The exit status of a refusal: by its errno, or by its HTTP status when it has none. */
export function exitForProblem(status: number, errno: string | undefined): ExitCode {
  if (errno !== undefined && ERRNO_EXIT[errno] !== undefined) return ERRNO_EXIT[errno]!;
  if (status === 401 || status === 403) return EXIT.access;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 422) return EXIT.unsupported;
  if (status === 429 || status >= 500) return EXIT.server;
  return EXIT.invalid;
}

export function exitTableText(): string {
  return EXIT_TABLE.map((r) => `  ${r.status}  ${r.when}${r.next ? ` (${r.next})` : ''}`).join('\n');
}
