import type { z } from 'zod';
import type { Caller } from '../core/caller.js';
import { ownerAs } from '../core/caller.js';
import type { Core } from '../core/core.js';
import type { GroupView } from '../core/groups.js';
import type { IovaSpace } from '../core/iova-space.js';
import type { Binding, Context, Device, GroupHold, Hwpt, Mapping, Principal, Range } from '../core/model.js';
import { hex } from '../core/u64.js';
import { deviceOut, regionOut, type DeviceOutput } from '../schemas/topology.js';
import type { ContextOutput, IoasOutput, MappingOutput } from './schemas/allocator.js';
import type { GroupOutput } from './schemas/inventory.js';
import type { BindingOutput, GroupHoldOutput, HwptOutput } from './schemas/ownership.js';
import type { PrincipalOutput } from './schemas/principals.js';

/**
 * How each object is shown on the wire: what its GET answers, what a change answers with, and the
 * `state` of its events. One shaper per object, so the three never disagree.
 */
export function views(core: Pick<Core, 'ioas' | 'engine' | 'inventory'>) {
  const { engine } = core;
  const rangeOut = (r: Range) => ({ start: hex(r.start), last: hex(r.last) });
  // A group's view is one frozen object until a change derives it again: its wire form without an
  // owner is made once per view (the owner depends on who asks, and changes without the view).
  const groupWire = new WeakMap<GroupView, z.output<typeof GroupOutput>>();
  const unowned = (g: GroupView): z.output<typeof GroupOutput> => {
    let out = groupWire.get(g);
    if (!out) {
      out = deepFreeze({ ...g, reservedRegions: g.reservedRegions.map(regionOut), owner: null });
      groupWire.set(g, out);
    }
    return out;
  };
  // Mappings listed together tend to share a length: the last one's hex is reused (a pure memo).
  let lastLength = -1n;
  let lastLengthHex = '';
  const lengthHex = (n: bigint): string => (n === lastLength ? lastLengthHex : (lastLengthHex = hex((lastLength = n))));
  return {
    range: rangeOut,
    context: (c: Context): z.output<typeof ContextOutput> => ({
      id: c.id,
      principalId: c.principalId,
      name: c.name,
      leaseSeconds: c.leaseSeconds,
      expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(),
      createdAt: c.createdAt,
      ioas: core.ioas.list({ id: c.principalId, role: 'user' }, c.id).map((s) => s.id),
    }),
    ioas: (s: IovaSpace): z.output<typeof IoasOutput> => ({
      id: s.id,
      contextId: s.contextId,
      alignment: hex(s.alignment),
      allowedRanges: s.allowed.map(rangeOut),
      mappings: s.mappings.size,
      createdAt: s.createdAt,
    }),
    mapping: (m: Mapping): z.output<typeof MappingOutput> => ({
      iova: hex(m.iova),
      length: lengthHex(m.length),
      userAddress: hex(m.userAddress),
      read: m.read,
      write: m.write,
    }),
    hwpt: (h: Hwpt): z.output<typeof HwptOutput> => ({
      id: h.id,
      contextId: h.contextId,
      kind: h.kind,
      ioasId: h.ioasId,
      parentId: h.parentId,
      auto: h.auto,
      nestParent: h.nestParent,
      pasid: h.pasid,
      dirtyTracking: h.dirtyTracking,
      ...(h.data === null ? {} : { data: h.data }),
      devices: engine.hwpts.devicesOf(h),
      pasids: engine.hwpts.pasidUsersOf(h),
      children: engine.hwpts.childrenOf(h),
      createdAt: h.createdAt,
    }),
    binding: (b: Binding): z.output<typeof BindingOutput> => ({
      deviceId: b.deviceId,
      groupId: b.groupId,
      contextId: b.contextId,
      hwptId: engine.deviceFirstView.hwptIdOf(b),
      ioasId: engine.deviceFirstView.ioasIdOf(b),
      pasids: [...b.pasids.values()].map((p) => ({ pasid: p.pasid, hwptId: p.hwptId })),
    }),
    /** A device with the isolation warnings of its group (or no-iommu without one). */
    device: (d: Device): z.output<typeof DeviceOutput> => deviceOut(d, core.inventory.groupOf(d)),
    /** A group as a viewer sees it: the owner is redacted to "other" when it is another principal's (null: as an admin). */
    group: (g: GroupView, viewer: Caller | null): z.output<typeof GroupOutput> => {
      const holder = engine.state.holderOf(g.id);
      return holder ? { ...unowned(g), owner: ownerAs(holder, viewer) } : unowned(g);
    },
    hold: (h: GroupHold): z.output<typeof GroupHoldOutput> => ({
      groupId: h.groupId,
      contextId: h.contextId,
      containerId: h.ioasId,
      openDevices: engine.groupFirstView.openDevicesOf(h),
    }),
    principal: (p: Principal): z.output<typeof PrincipalOutput> => ({ ...p, quotas: { ...p.quotas, maxPinnedBytes: hex(p.quotas.maxPinnedBytes) } }),
  };
}

export type Views = ReturnType<typeof views>;

/**
 * Freezes an answer and everything in it: the serializer writes a frozen object's text once and
 * keeps it (http/serializer.ts), so an answer frozen here must never change; a new state gets a
 * new answer.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
