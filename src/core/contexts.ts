import type { Caller } from './caller.js';
import { fail } from './errors.js';
import type { Context, ContextRecord } from './model.js';
import type { ObjectTable } from './objects.js';
import type { ContextPort } from './ports.js';
import type { QuotaBook } from './quotas.js';
import type { Tx, UndoLog } from './tx.js';

export interface NewContext {
  name?: string | undefined;
  leaseSeconds?: number | undefined;
}

export interface ContextDeps {
  port: ContextPort;
  tx: Tx;
  quotas: QuotaBook;
  objects: ObjectTable;
  /** Epoch milliseconds. */
  now: () => number;
  newId: (prefix: string) => string;
}

/**
 * Contexts (SPEC 2): the unit of ownership, like an open /dev/iommu. Deleting one, its lease running
 * out, or its principal going releases everything it owns through the object table's one teardown.
 */
export class Contexts {
  constructor(private readonly deps: ContextDeps) {
    deps.objects.define('context', (ctx) => deps.port.deleteContext(ctx.id));
  }

  /** Start-up: every stored context back in the table. */
  restore(): void {
    for (const r of this.deps.port.listContexts()) this.deps.objects.add(contextObject(r));
  }

  create(caller: Caller, input: NewContext): Context {
    const { tx, port, objects, now, newId, quotas } = this.deps;
    quotas.assertContextRoom(caller.id, this.heldBy(caller.id));
    return tx.run(
      (undo) => {
        const at = now();
        const ctx = contextObject({
          id: newId('ctx'),
          principalId: caller.id,
          name: input.name ?? null,
          leaseSeconds: input.leaseSeconds ?? null,
          expiresAt: input.leaseSeconds === undefined ? null : at + input.leaseSeconds * 1000,
          createdAt: new Date(at).toISOString(),
        });
        port.insertContext(ctx);
        objects.add(ctx, undo);
        return ctx;
      },
      { actor: caller.id, action: 'context.create', target: (c) => `context:${c.id}` },
    );
  }

  /** How many contexts a principal holds. */
  heldBy(principalId: string): number {
    return this.deps.objects.countOwned('context', principalId);
  }

  list(caller: Caller): Context[] {
    return this.deps.objects.visible(caller, 'context');
  }

  get(caller: Caller, id: string): Context {
    return this.deps.objects.get(caller, 'context', id);
  }

  /** Extends the lease from now; `leaseSeconds` may change its length or give a lease to a context without one. */
  renew(caller: Caller, id: string, leaseSeconds?: number): Context {
    const ctx = this.get(caller, id);
    const seconds = leaseSeconds ?? ctx.leaseSeconds;
    if (seconds === null) fail('EINVAL', `context ${id} has no lease to renew; give leaseSeconds`);
    const before = { leaseSeconds: ctx.leaseSeconds, expiresAt: ctx.expiresAt };
    return this.deps.tx.run(
      (undo) => {
        ctx.leaseSeconds = seconds;
        ctx.expiresAt = this.deps.now() + seconds * 1000;
        undo.push(() => Object.assign(ctx, before));
        this.deps.port.setContextLease(id, ctx.leaseSeconds, ctx.expiresAt);
        this.deps.tx.emit({ type: 'context.renewed', object: { kind: 'context', id }, scope: 'owner', principalId: ctx.principalId, contextId: id, subject: ctx });
        return ctx;
      },
      { actor: caller.id, action: 'context.renew', target: `context:${id}` },
    );
  }

  /** Releases everything the context owns, then the context, in one transaction. */
  delete(caller: Caller, id: string): void {
    this.get(caller, id);
    this.deps.tx.run((undo) => this.release(id, undo), { actor: caller.id, action: 'context.delete', target: `context:${id}` });
  }

  /** Releases every context whose lease ran out by `now`, as a delete would. Returns their ids. */
  reapExpired(now = this.deps.now()): string[] {
    const expired = [...this.deps.objects.all('context').values()].filter((c) => c.expiresAt !== null && c.expiresAt <= now).map((c) => c.id);
    for (const id of expired) this.deps.tx.run((undo) => this.release(id, undo), { actor: null, action: 'context.expire', target: `context:${id}` });
    return expired;
  }

  /** Releases every context of a principal (before the principal is deleted), inside the caller's transaction. */
  releasePrincipal(principalId: string): void {
    const mine = [...this.deps.objects.all('context').values()].filter((c) => c.principalId === principalId).map((c) => c.id);
    this.deps.tx.run((undo) => {
      for (const id of mine) this.release(id, undo);
    });
  }

  private release(id: string, undo: UndoLog): void {
    this.deps.objects.release(id, undo);
  }
}

function contextObject(r: ContextRecord): Context {
  // Field by field, one shape for every context (a spread of the record builds it key by key).
  return {
    type: 'context',
    id: r.id,
    contextId: r.id,
    principalId: r.principalId,
    name: r.name,
    leaseSeconds: r.leaseSeconds,
    expiresAt: r.expiresAt,
    createdAt: r.createdAt,
    users: new Set(),
  };
}
