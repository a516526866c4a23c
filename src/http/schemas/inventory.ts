import { z } from 'zod';
import { DeviceKindSchema, GroupKindSchema } from '../../schemas/topology.js';
import { BlockerSchema } from './problem.js';
import { decimal, QueryBool } from './common.js';

export const GroupOutput = z
  .object({
    id: z.number().int(),
    kind: GroupKindSchema,
    devices: z.array(z.string()),
    viable: z.boolean().meta({ description: 'no device of the group is on a DMA-capable kernel driver' }),
    blockers: z.array(BlockerSchema),
    owner: z.string().nullable().meta({ description: 'owning context; "other" when it is another principal\'s' }),
  })
  .meta({ id: 'Group' });

export const DeviceQuery = z
  .object({
    group: decimal(0, 2 ** 31 - 1),
    driver: z.string().min(1),
    kind: DeviceKindSchema,
    free: QueryBool.meta({ description: 'true: only devices whose group has no owner' }),
  })
  .partial();

export const SetDriverBody = z.object({
  driver: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/).meta({ description: 'vfio-pci, pci-stub, none, or a kernel driver' }),
}).strict();

export const TopologyQuery = z.object({ mode: z.enum(['replace', 'merge']).default('replace') });
