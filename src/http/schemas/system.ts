import { z } from 'zod';
import { IommuOutput } from '../../schemas/topology.js';

export const PolicySchema = z.enum(['group-first', 'device-first']);

export const SystemOutput = z
  .object({
    version: z.string(),
    policy: PolicySchema,
    iommu: IommuOutput,
    counts: z.object({ groups: z.number().int(), devices: z.number().int(), principals: z.number().int() }),
  })
  .meta({ id: 'System' });
