import type { Principal } from './model.js';
import type { PrincipalPort, StoredPrincipal } from './ports.js';
import type { UndoLog } from './tx.js';

/**
 * Principals in memory, with the hashes of their tokens: every request authenticates and reads its
 * quotas and clearances here, never in the store. As with the inventory (inventory-state.ts), memory
 * is the primary copy and the store is written through: the store first, then memory, the inverse
 * in the change's undo log. Principals handed out are frozen.
 */
export class PrincipalState {
  private readonly byId = new Map<string, Principal>();
  private readonly hashOf = new Map<string, string>();
  private readonly idOfHash = new Map<string, string>();
  private list: readonly Principal[] | null = null;
  private changeCount = 0;

  constructor(private readonly port: PrincipalPort) {}

  /** Start-up (and after the database changed under it): memory derived afresh from the store. */
  load(): void {
    this.byId.clear();
    this.hashOf.clear();
    this.idOfHash.clear();
    this.list = null;
    this.changeCount++;
    for (const p of this.port.listPrincipals()) this.byId.set(p.id, frozenPrincipal(p));
    for (const { id, tokenHash } of this.port.listTokenHashes()) this.assignHash(id, tokenHash);
  }

  // ---- reads ------------------------------------------------------------------------------------

  /** Every principal, oldest first (as the store lists them: by creation time, then id). */
  all(): readonly Principal[] {
    return (this.list ??= Object.freeze(
      [...this.byId.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    ));
  }

  /** Counts every change to memory (undo included). */
  get version(): number {
    return this.changeCount;
  }

  get count(): number {
    return this.byId.size;
  }

  get(id: string): Principal | undefined {
    return this.byId.get(id);
  }

  /** The principal a token hash belongs to. */
  byTokenHash(hash: string): Principal | undefined {
    const id = this.idOfHash.get(hash);
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** The stored hash of a principal's token (the invariant check compares it with the database's). */
  tokenHashOf(id: string): string | undefined {
    return this.hashOf.get(id);
  }

  nameTaken(name: string, exceptId?: string): boolean {
    for (const p of this.byId.values()) if (p.name === name && p.id !== exceptId) return true;
    return false;
  }

  countAdmins(): number {
    let n = 0;
    for (const p of this.byId.values()) if (p.role === 'admin') n++;
    return n;
  }

  // ---- writes: the store first, then memory, the inverse in the undo log --------------------------

  insert(p: StoredPrincipal, undo: UndoLog): void {
    this.port.insertPrincipal(p);
    const { tokenHash, ...principal } = p;
    this.put(frozenPrincipal(principal));
    this.assignHash(p.id, tokenHash);
    undo.push(() => {
      this.remove(p.id);
      this.assignHash(p.id, undefined);
    });
  }

  /** Name, role, clearances and quotas (the creation time stays, as in the store). */
  update(p: Principal, undo: UndoLog): void {
    const previous = this.byId.get(p.id);
    this.port.updatePrincipal(p);
    if (!previous) return; // the store changed no row either
    this.put(frozenPrincipal({ ...p, createdAt: previous.createdAt }));
    undo.push(() => this.put(previous));
  }

  setTokenHash(id: string, hash: string, undo: UndoLog): void {
    const previous = this.hashOf.get(id);
    this.port.setTokenHash(id, hash);
    if (!this.byId.has(id)) return;
    this.assignHash(id, hash);
    undo.push(() => this.assignHash(id, previous));
  }

  delete(id: string, undo: UndoLog): void {
    const previous = this.byId.get(id);
    const hash = this.hashOf.get(id);
    this.port.deletePrincipal(id);
    if (!previous) return;
    this.remove(id);
    this.assignHash(id, undefined);
    undo.push(() => {
      this.put(previous);
      this.assignHash(id, hash);
    });
  }

  // ---- memory alone -------------------------------------------------------------------------------

  private put(p: Principal): void {
    this.byId.set(p.id, p);
    this.list = null;
    this.changeCount++;
  }

  private remove(id: string): void {
    this.byId.delete(id);
    this.list = null;
    this.changeCount++;
  }

  private assignHash(id: string, hash: string | undefined): void {
    const previous = this.hashOf.get(id);
    if (previous !== undefined && this.idOfHash.get(previous) === id) this.idOfHash.delete(previous);
    if (hash === undefined) this.hashOf.delete(id);
    else {
      this.hashOf.set(id, hash);
      this.idOfHash.set(hash, id);
    }
  }
}

/** What the `principals` table keeps of a principal (src/store/principal-store.ts), frozen. */
function frozenPrincipal(p: Principal): Principal {
  return Object.freeze({
    id: p.id,
    name: p.name,
    role: p.role,
    clearances: Object.freeze([...p.clearances]) as string[],
    quotas: Object.freeze({ ...p.quotas }),
    createdAt: p.createdAt,
  });
}
