import type { CoreEvent } from '../events.js';
import type { IoasidAllocator } from '../ioasid.js';
import type { Mappings } from '../mappings.js';
import type { PolicyName } from '../model.js';
import type { ObjectTable } from '../objects.js';
import type { OwnershipState } from '../ownership.js';
import type { BindingPort, GroupHoldPort, HwptPort, InventoryReadPort } from '../ports.js';
import type { QuotaBook } from '../quotas.js';
import type { Tx } from '../tx.js';

/** What the ownership policies share: the object table, the transaction, and the narrow ports they write. */
export interface PolicyDeps {
  objects: ObjectTable;
  tx: Tx;
  state: OwnershipState;
  inventory: InventoryReadPort;
  clearancesOf: (principalId: string) => readonly string[];
  quotas: QuotaBook;
  ids: IoasidAllocator;
  mappings: Mappings;
  groupHolds: GroupHoldPort;
  bindings: BindingPort;
  hwpts: HwptPort;
  now: () => number;
}

/**
 * What every ownership policy provides to the engine. Their operations differ (open/container vs
 * bind/attach) and are reached through the engine's groupFirst() / deviceFirst(); the rules they
 * enforce are the shared ones of ownership.ts. Teardown is not theirs: the object table releases a
 * context generically, through the destroy op each policy registers for its object types.
 */
export interface OwnershipPolicy {
  readonly name: PolicyName;
  /** Rebuilds this policy's objects from the store at start-up. */
  restore(): void;
}

/**
 * A group's DMA ownership claimed by a context (device-first: its first device bound; group-first:
 * the group joined a container) or released: inventory news, with the owner shown as "other" to others.
 */
export function groupEvent(type: 'group.claimed' | 'group.released', holder: { groupId: number; contextId: string; principalId: string }, devices?: string[]): CoreEvent {
  return {
    type,
    object: { kind: 'group', id: holder.groupId },
    scope: 'inventory',
    principalId: holder.principalId,
    contextId: holder.contextId,
    ...(devices ? { detail: { devices } } : {}),
  };
}
