import { z } from 'zod';

const GroupId = z.number().int();

/** One consequence of a rescan (SPEC 10's effect vocabulary, extended with what a host can do). */
export const RescanEffectSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('group-added'), groupId: GroupId }),
    z.object({ kind: z.literal('group-changed'), groupId: GroupId, fields: z.array(z.string()) }),
    z.object({ kind: z.literal('group-removed'), groupId: GroupId }),
    z.object({ kind: z.literal('device-added'), deviceId: z.string(), groupId: GroupId.nullable(), driver: z.string() }),
    z.object({ kind: z.literal('device-changed'), deviceId: z.string(), fields: z.array(z.string()) }),
    z.object({ kind: z.literal('driver-changed'), deviceId: z.string(), from: z.string(), to: z.string(), description: z.string().nullable() }),
    z.object({ kind: z.literal('device-removed'), deviceId: z.string() }),
    z.object({ kind: z.literal('iommu-changed'), fields: z.array(z.string()) }),
    z.object({ kind: z.literal('host-warnings-changed'), codes: z.array(z.string()) }),
  ])
  .meta({ id: 'RescanEffect' });

export const RescanReply = z
  .object({
    dryRun: z.boolean().meta({ description: 'true: nothing was changed; effects say what the real call would do' }),
    effects: z.array(RescanEffectSchema),
  })
  .meta({ id: 'RescanReply' });
