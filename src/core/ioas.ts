import type { Caller } from './caller.js';
import type { IoasidAllocator } from './ioasid.js';
import { IovaSpace } from './iova-space.js';
import type { SharedPages } from './mapping-rows.js';
import type { Mappings } from './mappings.js';
import type { ObjectTable } from './objects.js';
import type { IoasPort } from './ports.js';
import type { QuotaBook } from './quotas.js';
import type { Tx } from './tx.js';

export interface IoasDeps {
  port: IoasPort;
  tx: Tx;
  objects: ObjectTable;
  quotas: QuotaBook;
  ids: IoasidAllocator;
  mappings: Mappings;
  /** Pinned pages shared between mappings (copies), common to every address space. */
  sharedPages: SharedPages;
  now: () => number;
}

/**
 * I/O address spaces as objects (SPEC 2, 4, 5): created in a context with an IOASID, destroyed by the
 * object table's one rule (EBUSY while a hwpt, a container group or a device access uses it; its
 * mappings go with it). Kernel: drivers/iommu/iommufd/ioas.c.
 */
export class IoasService {
  constructor(private readonly deps: IoasDeps) {
    deps.objects.define('ioas', (space, undo) => {
      deps.mappings.removeAll(space, undo);
      deps.port.deleteIoas(space.id);
      deps.ids.release(space.id, undo);
      deps.quotas.count(space.principalId, 'ioas', -1, undo);
    });
  }

  /** Start-up: every stored address space (without mappings: {@link Mappings.restore} fills them). */
  restore(): void {
    const { port, objects, quotas } = this.deps;
    for (const row of port.listIoas()) {
      const ctx = objects.find('context', row.contextId);
      if (!ctx) continue;
      const space = new IovaSpace(row.id, row.contextId, ctx.principalId, row.createdAt, this.deps.sharedPages);
      space.allowed = row.allowed;
      objects.add(space);
      quotas.count(ctx.principalId, 'ioas', 1);
    }
  }

  create(caller: Caller, contextId: string): IovaSpace {
    const { tx, port, objects, quotas, ids, now } = this.deps;
    const ctx = objects.get(caller, 'context', contextId);
    quotas.assertIoasRoom(ctx.principalId);
    return tx.run(
      (undo) => {
        const space = new IovaSpace(ids.take(undo), ctx.id, ctx.principalId, new Date(now()).toISOString(), this.deps.sharedPages);
        port.insertIoas({ id: space.id, contextId: ctx.id, allowed: [], createdAt: space.createdAt });
        objects.add(space, undo);
        quotas.count(ctx.principalId, 'ioas', 1, undo);
        return space;
      },
      { actor: caller.id, action: 'ioas.create', target: (s) => `ioas:${s.id}` },
    );
  }

  get(caller: Caller, id: number): IovaSpace {
    return this.deps.objects.get(caller, 'ioas', id);
  }

  list(caller: Caller, contextId?: string): IovaSpace[] {
    return this.deps.objects.visible(caller, 'ioas').filter((s) => contextId === undefined || s.contextId === contextId);
  }

  /** Destroying an ioas with mappings is fine; one used by a hwpt, group or device is EBUSY. */
  destroy(caller: Caller, id: number): void {
    const space = this.get(caller, id);
    this.deps.tx.run((undo) => this.deps.objects.destroy(space, undo), { actor: caller.id, action: 'ioas.destroy', target: `ioas:${id}` });
  }
}
