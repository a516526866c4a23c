import { z } from 'zod';
import { decimal, oneOf } from './common.js';

export const ContextRef = z.object({ contextId: z.string().min(1).max(64) }).strict();
export const ContainerBody = z.object({ ioasId: z.number().int().min(0).max(2 ** 32 - 1) }).strict();
export const GroupDeviceParams = z.object({ id: decimal(0, 2 ** 31 - 1), deviceId: z.string().min(1).max(128) });

export const GroupHoldOutput = z
  .object({
    groupId: z.number().int(),
    contextId: z.string(),
    containerId: z.number().int().nullable().meta({ description: 'the ioas (container) the group is in' }),
    openDevices: z.record(z.string(), z.number().int()).meta({ description: 'device id -> open count' }),
  })
  .meta({ id: 'GroupHold' });

export const DeviceOpenOutput = z.object({ deviceId: z.string(), opens: z.number().int() });

const Pasid = z.number().int().min(0).max(2 ** 20);

export const AttachBody = z
  .object({
    ptId: z.number().int().min(0).max(2 ** 32 - 1).meta({ description: 'an ioas (its automatic hwpt is used) or a hwpt' }),
    pasid: Pasid.optional(),
    replace: z.boolean().optional(),
  })
  .strict();

export const DetachBody = z.object({ pasid: Pasid.optional() }).strict().prefault({});

export const BindingOutput = z
  .object({
    deviceId: z.string(),
    groupId: z.number().int(),
    contextId: z.string(),
    hwptId: z.number().int().nullable().meta({ description: 'page table the device is attached to through its RID' }),
    ioasId: z.number().int().nullable().meta({ description: 'the ioas behind that page table (or a virtual device\'s access)' }),
    pasids: z.array(z.object({ pasid: z.number().int(), hwptId: z.number().int() })),
  })
  .meta({ id: 'Binding' });

const PtId = z.number().int().min(0).max(2 ** 32 - 1);
const HwptFields = {
  deviceId: z.string().min(1).max(128).meta({ description: 'a device bound to the context that will own the hwpt' }),
  nestParent: z.boolean().optional().meta({ description: 'paging only: may parent nested hwpts' }),
  pasid: z.boolean().optional().meta({ description: 'may be attached to PASIDs' }),
  dirtyTracking: z.boolean().optional(),
  data: z.record(z.string(), z.unknown()).optional().meta({ description: 'nested only: the stage-1 table description' }),
};

/** ptId, or one of its aliases: ioasId (a paging hwpt) or parentId (a nested hwpt). Exactly one. */
export const HwptBody = oneOf(
  [
    z.object({ ...HwptFields, ptId: PtId.meta({ description: 'an ioas (paging hwpt) or a nestParent paging hwpt (nested hwpt)' }) }).strict().meta({ title: 'ptId' }),
    z.object({ ...HwptFields, ioasId: PtId.meta({ description: 'alias of ptId for a paging hwpt' }) }).strict().meta({ title: 'ioasId' }),
    z.object({ ...HwptFields, parentId: PtId.meta({ description: 'alias of ptId for a nested hwpt' }) }).strict().meta({ title: 'parentId' }),
  ],
  'give deviceId and exactly one of ptId, ioasId or parentId',
);

export const HwptOutput = z
  .object({
    id: z.number().int(),
    contextId: z.string(),
    kind: z.enum(['paging', 'nested']),
    ioasId: z.number().int(),
    parentId: z.number().int().nullable(),
    auto: z.boolean(),
    nestParent: z.boolean(),
    pasid: z.boolean(),
    dirtyTracking: z.boolean(),
    data: z.unknown().optional(),
    devices: z.array(z.string()),
    pasids: z.array(z.string()).meta({ description: '"deviceId/pasid" attachments' }),
    children: z.array(z.number().int()),
    createdAt: z.string(),
  })
  .meta({ id: 'Hwpt' });

export const HwptIdParams = z.object({ id: decimal(0, 2 ** 32 - 1).meta({ description: 'hwpt id (decimal)' }) });

export const PolicyBody = z.object({ policy: z.enum(['group-first', 'device-first']), dryRun: z.boolean().default(false) }).strict();
export const PolicyReply = z.object({
  policy: z.enum(['group-first', 'device-first']),
  previous: z.enum(['group-first', 'device-first']),
  changed: z.boolean(),
  dryRun: z.boolean(),
  effects: z.array(z.looseObject({ kind: z.string() })).optional().meta({ description: 'a dry run: every consequence of the switch' }),
});
