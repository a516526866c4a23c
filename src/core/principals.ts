import { fail } from './errors.js';
import type { CoreEvent } from './events.js';
import type { Principal, Quotas, Role } from './model.js';
import type { PrincipalState } from './principal-state.js';
import type { Secrets } from './ports.js';
import type { Tx } from './tx.js';
import { TokenHashMemo } from './token-memo.js';
import { U64_MAX } from './u64.js';

/** Defaults for a principal created without quotas: VFIO's default of 65535 DMA entries per container. */
export const DEFAULT_QUOTAS: Quotas = {
  maxIoas: 1024,
  maxMappings: 65535,
  maxPinnedBytes: U64_MAX,
  maxPasids: 1024,
  maxContexts: 1024,
};

export interface NewPrincipal {
  name: string;
  role: Role;
  clearances?: string[];
  quotas?: Partial<Quotas>;
}

export interface PrincipalPatch {
  name?: string;
  role?: Role;
  clearances?: string[];
  quotas?: Partial<Quotas>;
  /** Issue a new token; the old one stops working at once. */
  rotateToken?: boolean;
}

/** The id of the admin principal made on first start. */
export const BOOTSTRAP_ADMIN_ID = 'admin';

/** Principals and their tokens (in memory, written through: principal-state.ts). */
export class Principals {
  /** Hashes of tokens that authenticated (token-memo.ts): a pure cache, whose owner is still looked up each time. */
  private readonly tokenHashes: TokenHashMemo;

  constructor(
    private readonly state: PrincipalState,
    private readonly tx: Tx,
    private readonly secrets: Secrets,
    /** Releases what the principal holds (its contexts) inside the delete's transaction. */
    private readonly releaseHoldings: (principalId: string) => void = () => {},
  ) {
    this.tokenHashes = new TokenHashMemo((token) => secrets.hashToken(token));
  }

  list(): readonly Principal[] {
    return this.state.all();
  }

  /** How many principals there are. */
  count(): number {
    return this.state.count;
  }

  /** A principal, or undefined. */
  find(id: string): Principal | undefined {
    return this.state.get(id);
  }

  get(id: string): Principal {
    const p = this.state.get(id);
    if (!p) fail('ENOENT', `principal ${id} does not exist`);
    return p;
  }

  /** The principal a bearer token belongs to, or undefined. Tokens are compared by hash only. */
  authenticate(token: string): Principal | undefined {
    const hash = this.tokenHashes.of(token);
    const principal = this.state.byTokenHash(hash);
    if (principal) this.tokenHashes.keep(token, hash);
    return principal;
  }

  create(input: NewPrincipal, actor: string | null, now: string): { principal: Principal; token: string } {
    return this.tx.run(
      (undo) => {
      if (this.state.nameTaken(input.name)) fail('EEXIST', `a principal named ${input.name} already exists`);
      const { token, hash } = this.secrets.newToken();
      const principal: Principal = {
        id: this.secrets.newId('p'),
        name: input.name,
        role: input.role,
        clearances: uniqueSorted(input.clearances ?? []),
        quotas: { ...DEFAULT_QUOTAS, ...input.quotas },
        createdAt: now,
      };
      this.state.insert({ ...principal, tokenHash: hash }, undo);
      this.tx.emit(principalEvent('principal.created', principal.id));
      return { principal, token };
      },
      { actor, action: 'principal.create', target: (r) => `principal:${r.principal.id}`, detail: (r: { principal: Principal }) => ({ name: r.principal.name, role: r.principal.role }) },
    );
  }

  update(id: string, patch: PrincipalPatch, actor: string | null): { principal: Principal; token?: string } {
    return this.tx.run(
      (undo) => {
      const current = this.get(id);
      if (patch.name !== undefined && this.state.nameTaken(patch.name, id)) {
        fail('EEXIST', `a principal named ${patch.name} already exists`);
      }
      if (current.role === 'admin' && patch.role === 'user' && this.state.countAdmins() === 1) {
        fail('EBUSY', 'the last admin cannot be made a user', { blockers: [{ kind: 'principal', id, reason: 'last admin' }] });
      }
      const principal: Principal = {
        ...current,
        name: patch.name ?? current.name,
        role: patch.role ?? current.role,
        clearances: patch.clearances ? uniqueSorted(patch.clearances) : current.clearances,
        quotas: { ...current.quotas, ...patch.quotas },
      };
      this.state.update(principal, undo);
      this.tx.emit(principalEvent('principal.updated', id));
      let token: string | undefined;
      if (patch.rotateToken) {
        const issued = this.secrets.newToken();
        this.state.setTokenHash(id, issued.hash, undo);
        token = issued.token;
      }
      return token === undefined ? { principal } : { principal, token };
      },
      {
        actor,
        action: 'principal.update',
        target: `principal:${id}`,
        detail: (r: { token?: string }) => ({ changed: Object.keys(patch).filter((k) => k !== 'rotateToken'), rotatedToken: r.token !== undefined }),
      },
    );
  }

  delete(id: string, actor: string | null): void {
    this.tx.run(
      (undo) => {
      const current = this.get(id);
      if (id === actor) fail('EBUSY', 'a principal cannot delete itself', { blockers: [{ kind: 'principal', id, reason: 'the caller' }] });
      if (current.role === 'admin' && this.state.countAdmins() === 1) {
        fail('EBUSY', 'the last admin cannot be deleted', { blockers: [{ kind: 'principal', id, reason: 'last admin' }] });
      }
      this.releaseHoldings(id);
      this.state.delete(id, undo);
      this.tx.emit({ ...principalEvent('principal.deleted', id), gone: true });
      },
      { actor, action: 'principal.delete', target: `principal:${id}` },
    );
  }

  /**
   * First start: make the admin principal. With a fixed token (IOASD_ADMIN_TOKEN) the admin's token
   * is set to it on every start, so a container's configured token always works.
   * Returns the new token when one was generated (the caller writes it to admin.token).
   */
  ensureBootstrapAdmin(fixedToken: string | undefined, now: string): { created: boolean; token?: string } {
    const existing = this.state.get(BOOTSTRAP_ADMIN_ID);
    if (existing) {
      if (fixedToken !== undefined) this.tx.run((undo) => this.state.setTokenHash(BOOTSTRAP_ADMIN_ID, this.secrets.hashToken(fixedToken), undo));
      return { created: false };
    }
    // The bootstrap admin was deleted on purpose while other admins remain: do not bring it back.
    if (this.state.countAdmins() > 0) return { created: false };
    const issued = fixedToken === undefined ? this.secrets.newToken() : { token: fixedToken, hash: this.secrets.hashToken(fixedToken) };
    this.tx.run(
      (undo) =>
        this.state.insert(
          { id: BOOTSTRAP_ADMIN_ID, name: 'admin', role: 'admin', clearances: [], quotas: DEFAULT_QUOTAS, createdAt: now, tokenHash: issued.hash },
          undo,
        ),
      { actor: null, action: 'principal.bootstrap', target: `principal:${BOOTSTRAP_ADMIN_ID}` },
    );
    return fixedToken === undefined ? { created: true, token: issued.token } : { created: true };
  }
}

function principalEvent(type: string, id: string): CoreEvent {
  return { type, object: { kind: 'principal', id }, scope: 'admin', principalId: null, contextId: null };
}

function uniqueSorted(labels: string[]): string[] {
  return [...new Set(labels)].sort();
}
