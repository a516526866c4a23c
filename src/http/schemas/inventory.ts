import { z } from 'zod';
import { DeviceKindSchema, GroupKindSchema, IsolationWarningSchema, RegionOutput } from '../../schemas/topology.js';
import { BlockerSchema } from './problem.js';
import { decimal, QueryBool } from './common.js';

export const GroupOutput = z
  .object({
    id: z.number().int(),
    kind: GroupKindSchema,
    type: z.string().nullable().meta({ description: "the kernel's default domain type (DMA, DMA-FQ, identity, ...); null when not read from a host" }),
    warnings: z.array(IsolationWarningSchema).meta({ description: 'why this group may isolate less than it seems (SPEC 11)' }),
    devices: z.array(z.string()),
    reservedRegions: z.array(RegionOutput).meta({ description: 'the iommu-wide reserved regions plus those of its devices' }),
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

export const TopologyQuery = z.object({
  mode: z.enum(['replace', 'merge']).default('replace'),
  dryRun: QueryBool.optional().meta({ description: 'answer what the import would do, changing nothing' }),
});
