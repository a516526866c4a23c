/**
 * The SHA-256 of bearer tokens that authenticated, remembered so that a client's every request does
 * not hash its token again. A pure function's cache: a token's hash never changes, so nothing ever
 * needs dropping for correctness. Who a hash belongs to is still asked of the principals on every
 * request (`PrincipalState.byTokenHash`), so a rotated token or a removed principal is refused at once.
 *
 * Only tokens that matched a principal are kept (a client sending made-up tokens cannot fill it), and
 * at most `capacity` of them: when full it starts over.
 */
export class TokenHashMemo {
  private readonly hashes = new Map<string, string>();

  constructor(
    private readonly hash: (token: string) => string,
    private readonly capacity = 1024,
  ) {}

  /** The token's hash (from memory when it authenticated before). */
  of(token: string): string {
    return this.hashes.get(token) ?? this.hash(token);
  }

  /** Remembers the hash of a token that just authenticated. */
  keep(token: string, hash: string): void {
    if (this.hashes.has(token)) return;
    if (this.hashes.size >= this.capacity) this.hashes.clear();
    this.hashes.set(token, hash);
  }

  get size(): number {
    return this.hashes.size;
  }
}
