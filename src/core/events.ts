/**
 * What the core says about every change it makes, from the place that makes it (the object table's
 * add and destroy, and the few changes that are not objects: mappings, drivers, the inventory, the
 * policy, principals). Tx collects them per transaction: committed, they are the event log
 * (GET /v1/events); in a dry run, rolled back, they are the effects the answer lists.
 */

/** Who may see an event: the owner (and admins), everyone (inventory; owners redacted), or admins. */
export type EventScope = 'owner' | 'inventory' | 'admin';

export type EventObjectKind = 'context' | 'ioas' | 'mapping' | 'hwpt' | 'device' | 'group' | 'topology' | 'policy' | 'principal';

export interface CoreEvent {
  /** `<object>.<verb>`, e.g. `ioas.created`, `device.bound`, `group.claimed`. */
  type: string;
  object: { kind: EventObjectKind; id: string | number };
  scope: EventScope;
  /** The owning principal (owner scope), or the group's holder (inventory scope, for redaction). */
  principalId: string | null;
  contextId: string | null;
  /** The object is gone: its state is null. */
  gone?: boolean;
  /** What the renderer needs besides the id (a mapping, a device before it went); never stored. */
  subject?: unknown;
  /** Facts a dry run's effects are made of (a driver's from/to, a group's devices, bytes dropped). */
  detail?: Record<string, unknown>;
}

/** One consequence of a change, as a dry run lists it (SPEC 10). */
export type Effect = { kind: string } & Record<string, unknown>;

/**
 * The effects of a change, derived from its events: the consequences a person deciding whether to
 * run it needs (a group claimed or released, a driver change and what the host loses, devices
 * removed, page tables made or destroyed, mappings dropped, a context released), in commit order.
 */
export function effectsOf(events: readonly CoreEvent[]): Effect[] {
  const out: Effect[] = [];
  const dropped = new Map<number, Effect & { count: number; bytes: bigint }>();
  for (const e of events) {
    const d = e.detail ?? {};
    switch (e.type) {
      case 'mapping.removed': {
        const ioasId = d.ioasId as number;
        let agg = dropped.get(ioasId);
        if (!agg) {
          agg = { kind: 'mappings-dropped', ioasId, count: 0, bytes: 0n };
          dropped.set(ioasId, agg);
          out.push(agg);
        }
        agg.count++;
        agg.bytes += d.length as bigint;
        break;
      }
      case 'mapping.created':
        break;
      case 'group.claimed':
        out.push({ kind: 'group-claimed', groupId: e.object.id, devices: d.devices, contextId: e.contextId });
        break;
      case 'group.released':
        out.push({ kind: 'group-released', groupId: e.object.id });
        break;
      case 'device.driver-changed':
        out.push({ kind: 'driver-changed', deviceId: e.object.id, from: d.from, to: d.to, description: d.description });
        break;
      case 'device.removed':
        out.push({ kind: 'device-removed', deviceId: e.object.id });
        break;
      case 'hwpt.created':
        out.push({ kind: 'hwpt-created', ioasId: d.ioasId, hwptId: e.object.id, auto: d.auto });
        break;
      case 'hwpt.deleted':
        out.push({ kind: 'hwpt-destroyed', hwptId: e.object.id });
        break;
      case 'context.deleted': {
        const mine = events.filter((x) => x.contextId === e.object.id);
        out.push({
          kind: 'context-released',
          contextId: e.object.id,
          groups: [...new Set(mine.filter((x) => x.type === 'group.released').map((x) => x.object.id))],
          devices: [...new Set(mine.filter((x) => x.type === 'device.unbound' || x.type === 'device.closed').map((x) => x.object.id))],
          ioas: mine.filter((x) => x.type === 'ioas.deleted').map((x) => x.object.id),
        });
        break;
      }
      case 'policy.changed':
      case 'topology.imported':
        out.push({ kind: e.type.replace('.', '-'), ...d });
        break;
      // A rescan's changes to the host as a whole (core/rescan.ts).
      case 'topology.iommu-changed':
        out.push({ kind: 'iommu-changed', ...d });
        break;
      case 'topology.warnings-changed':
        out.push({ kind: 'host-warnings-changed', ...d });
        break;
      default:
        out.push({ kind: e.type.replace('.', '-'), [`${e.object.kind}Id`]: e.object.id, ...d });
    }
  }
  return out;
}
