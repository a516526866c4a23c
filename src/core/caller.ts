import type { Role } from './model.js';

/** Who is asking. Users see only their own contexts and what hangs off them; admins see all. */
export interface Caller {
  id: string;
  role: Role;
}

/** The one visibility rule (SPEC 7): an admin sees everything, a user only what its principal owns. */
export function visibleTo(caller: Caller, owned: { readonly principalId: string }): boolean {
  return caller.role === 'admin' || owned.principalId === caller.id;
}

/** Who holds something: a context and its principal. */
export interface Owner {
  contextId: string;
  principalId: string;
}

/** Shows a holder to a viewer: its context, or "other" when it belongs to another principal (SPEC 7). */
export function ownerAs(owner: Owner, viewer: Caller | null): string {
  return viewer === null || visibleTo(viewer, owner) ? owner.contextId : 'other';
}
