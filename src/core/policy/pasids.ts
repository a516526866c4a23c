import { fail } from '../errors.js';
import type { Binding, Device, Hwpt, PasidAttachment } from '../model.js';
import type { UndoLog } from '../tx.js';
import type { PolicyDeps } from './types.js';

/**
 * PASID attachments (device-first, SPEC 3 device-first 4; kernel: iommufd_device_attach with a
 * pasid): one PASID of a PASID-capable bound device on a hwpt allocated for PASID use, counted
 * against maxPasids. Each attachment uses its hwpt and its binding.
 */
export class Pasids {
  constructor(private readonly deps: PolicyDeps) {
    deps.objects.define('pasid-attachment', (p, undo) => this.teardown(p, undo));
  }

  attach(binding: Binding, device: Device, target: Hwpt | null, pasid: number, replace: boolean, undo: UndoLog): void {
    const { inventory, quotas, objects } = this.deps;
    const max = 2 ** inventory.getIommu().pasidBits - 1;
    if (!device.pasidCapable) fail('EINVAL', `device ${device.id} is not PASID-capable`);
    if (!Number.isInteger(pasid) || pasid < 1 || pasid > max) fail('EINVAL', `pasid must be in [1, ${max}]`);
    if (target === null || !target.pasid) fail('EINVAL', 'a PASID attaches only to a hwpt allocated with pasid: true');
    const current = binding.pasids.get(pasid);
    if (current !== undefined && !replace) {
      fail('EBUSY', `pasid ${pasid} of ${device.id} is already attached to hwpt ${current.hwptId}: use replace`, {
        blockers: [{ kind: 'hwpt', id: String(current.hwptId), reason: `${device.id} pasid ${pasid} attached`, owner: binding.contextId }],
      });
    }
    if (current === undefined && replace) fail('EINVAL', `pasid ${pasid} of ${device.id} is not attached: nothing to replace`);
    if (current?.hwptId === target.id) return;
    if (current === undefined) {
      let used = 0;
      for (const p of objects.all('pasid-attachment').values()) if (p.principalId === binding.principalId) used++;
      quotas.assertPasidRoom(binding.principalId, used);
    } else {
      objects.destroy(current, undo);
    }
    const attachment: PasidAttachment = {
      type: 'pasid-attachment',
      id: `${binding.deviceId}/${pasid}`,
      deviceId: binding.deviceId,
      pasid,
      hwptId: target.id,
      contextId: binding.contextId,
      principalId: binding.principalId,
      users: new Set(),
    };
    this.link(binding, target, attachment, undo);
    this.deps.bindings.putPasid(binding.deviceId, pasid, target.id);
  }

  /** Detaches one PASID; not attached is a no-op. */
  detach(binding: Binding, pasid: number, undo: UndoLog): void {
    const current = binding.pasids.get(pasid);
    if (current) this.deps.objects.destroy(current, undo);
  }

  /** Start-up: PASID attachments back on their bindings and hwpts. */
  restore(): void {
    const { objects, bindings } = this.deps;
    for (const r of bindings.listPasids()) {
      const binding = objects.find('binding', r.deviceId);
      const hwpt = objects.find('hwpt', r.hwptId);
      if (!binding || !hwpt) continue;
      const attachment: PasidAttachment = {
        type: 'pasid-attachment',
        id: `${r.deviceId}/${r.pasid}`,
        deviceId: r.deviceId,
        pasid: r.pasid,
        hwptId: r.hwptId,
        contextId: binding.contextId,
        principalId: binding.principalId,
        users: new Set(),
      };
      this.link(binding, hwpt, attachment);
    }
  }

  private link(binding: Binding, hwpt: Hwpt, attachment: PasidAttachment, undo?: UndoLog): void {
    const { objects } = this.deps;
    objects.add(attachment, undo);
    objects.use(attachment, hwpt, undo);
    objects.use(attachment, binding, undo);
    binding.pasids.set(attachment.pasid, attachment);
    undo?.push(() => binding.pasids.delete(attachment.pasid));
  }

  private teardown(p: PasidAttachment, undo: UndoLog): void {
    const { objects, bindings } = this.deps;
    const binding = objects.find('binding', p.deviceId)!;
    objects.unuse(p, objects.find('hwpt', p.hwptId)!, undo);
    objects.unuse(p, binding, undo);
    binding.pasids.delete(p.pasid);
    undo.push(() => binding.pasids.set(p.pasid, p));
    bindings.deletePasid(p.deviceId, p.pasid);
  }
}
