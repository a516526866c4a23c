import { Contexts } from './contexts.js';
import { Inventory } from './inventory.js';
import { InventoryState } from './inventory-state.js';
import { IoasService } from './ioas.js';
import { IoasidAllocator } from './ioasid.js';
import { SharedPages } from './mapping-rows.js';
import { Mappings } from './mappings.js';
import { ObjectTable } from './objects.js';
import { OwnershipState } from './ownership.js';
import { PolicyEngine } from './policy/engine.js';
import type { Secrets, Store } from './ports.js';
import { PrincipalState } from './principal-state.js';
import { DEFAULT_QUOTAS, Principals } from './principals.js';
import { QuotaBook } from './quotas.js';
import { HostRescan } from './rescan.js';
import { SystemView } from './system-view.js';
import { Tx } from './tx.js';

export interface CoreOptions {
  /** IOASIDs are allocated from this range (default 1..2^31-1). */
  ioasidRange?: { min: number; max: number };
  /** Epoch milliseconds. */
  now: () => number;
  secrets: Secrets;
}

/** Every service of the core, wired over one object table and one transaction mechanism. */
export interface Core {
  objects: ObjectTable;
  tx: Tx;
  quotas: QuotaBook;
  inventory: Inventory;
  /** Re-reading a real host: POST /v1/topology/rescan, --sysfs on an existing database. */
  rescan: HostRescan;
  principals: Principals;
  contexts: Contexts;
  ioas: IoasService;
  mappings: Mappings;
  engine: PolicyEngine;
  /** GET /v1/system's summary, from memory. */
  system: SystemView;
  /** The inventory and the principals in memory, written through to the store (read by the invariant check). */
  memory: { inventory: InventoryState; principals: PrincipalState };
}

/**
 * The composition root of the core: builds each service on the narrow ports it uses and rebuilds
 * memory from the store (the inventory and the principals, contexts, address spaces and their
 * mappings, then the policies' objects). Reads are answered from memory from then on.
 */
export function createCore(store: Store, options: CoreOptions): Core {
  const { now, secrets } = options;
  const range = options.ioasidRange ?? { min: 1, max: 2 ** 31 - 1 };
  const tx = new Tx(store);
  const objects = new ObjectTable();
  objects.onEvent((e) => tx.emit(e));
  const inventoryState = new InventoryState(store);
  inventoryState.load();
  const principalState = new PrincipalState(store);
  principalState.load();
  const quotas = new QuotaBook((id) => principalState.get(id)?.quotas ?? DEFAULT_QUOTAS);
  const inventory = new Inventory(inventoryState, tx);
  // ioas and hwpt ids share one space; the stored ones are taken before anything new is made.
  const ids = new IoasidAllocator(range.min, range.max, [...store.listIoas().map((r) => r.id), ...store.listHwpts().map((h) => h.id)]);
  const mappings = new Mappings({ port: store, tx, objects, quotas, policy: () => store.getPolicy() ?? 'device-first' });
  const contexts = new Contexts({ port: store, tx, objects, quotas, now, newId: secrets.newId });
  const ioas = new IoasService({ port: store, tx, objects, quotas, ids, mappings, now, sharedPages: new SharedPages() });
  const state = new OwnershipState(objects, inventoryState);
  const engine = new PolicyEngine(
    {
      objects,
      tx,
      state,
      inventory: inventoryState,
      clearancesOf: (id) => principalState.get(id)?.clearances ?? [],
      quotas,
      ids,
      mappings,
      groupHolds: store,
      bindings: store,
      hwpts: store,
      now,
    },
    store,
  );
  inventory.guardWith(state);
  const rescan = new HostRescan(inventoryState, tx, state);
  const principals = new Principals(principalState, tx, secrets, (id) => contexts.releasePrincipal(id));

  contexts.restore();
  ioas.restore();
  mappings.restore();
  engine.restore();
  const system = new SystemView(inventoryState, principalState, () => engine.policy);
  return { objects, tx, quotas, inventory, rescan, principals, contexts, ioas, mappings, engine, system, memory: { inventory: inventoryState, principals: principalState } };
}
