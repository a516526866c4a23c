import type { Services } from '../bootstrap.js';
import type { CoreEvent } from '../core/events.js';
import type { Context, Mapping } from '../core/model.js';
import { views } from './views.js';

/**
 * An event's `state`: its object as its GET shows it, rendered when the change commits (admin's view:
 * GET /v1/events redacts owners for others as it delivers). Null for an object that is gone.
 */
export function eventStateRenderer(services: Services): (event: CoreEvent) => unknown {
  const v = views(services);
  const { objects, inventory, engine, principals, memory } = services;
  return (e) => {
    const id = e.object.id;
    switch (e.object.kind) {
      case 'context': {
        const ctx = objects.find('context', String(id)) ?? (e.subject as Context | undefined);
        return ctx ? v.context(ctx) : null;
      }
      case 'ioas': {
        const space = objects.find('ioas', Number(id));
        return space ? v.ioas(space) : null;
      }
      case 'mapping':
        return v.mapping(e.subject as Mapping);
      case 'hwpt': {
        const hwpt = objects.find('hwpt', Number(id));
        return hwpt ? v.hwpt(hwpt) : null;
      }
      case 'group': {
        const group = memory.inventory.groupView(Number(id));
        return group ? v.group(group, null) : null;
      }
      case 'device': {
        if (e.scope === 'inventory') {
          const device = memory.inventory.getDevice(String(id));
          return device ? v.device(device) : null;
        }
        // Ownership news about a device: its binding (device-first) or its opens (group-first).
        const binding = objects.find('binding', String(id));
        if (binding) return v.binding(binding);
        const open = objects.find('device-open', String(id));
        if (open) return { deviceId: open.deviceId, groupId: open.groupId, opens: open.count };
        return null;
      }
      case 'policy':
        return { policy: engine.policy };
      case 'topology':
        return { ...inventory.counts(), mode: e.detail?.mode };
      case 'principal': {
        const p = principals.find(String(id));
        return p ? v.principal(p) : null;
      }
    }
  };
}
