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

export const CheckReportOutput = z
  .object({
    ok: z.boolean(),
    checked: z.record(z.string(), z.number().int()).meta({ description: 'how many of each thing were checked' }),
    violations: z.array(z.object({ invariant: z.string(), object: z.string(), detail: z.string() })),
  })
  .meta({ id: 'CheckReport' });

export const WhoamiOutput = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(['admin', 'user']),
    clearances: z.array(z.string()),
    quotas: z.object({ maxIoas: z.number().int(), maxMappings: z.number().int(), maxPinnedBytes: z.string(), maxPasids: z.number().int(), maxContexts: z.number().int() }),
    usage: z.object({ contexts: z.number().int(), ioas: z.number().int(), mappings: z.number().int(), pinnedBytes: z.string(), pasids: z.number().int() }),
  })
  .meta({ id: 'Whoami' });
