import { z } from 'zod';
import { ISOLATION_WARNING_CODES } from '../../core/model.js';
import { HostWarningSchema, IommuOutput } from '../../schemas/topology.js';

export const PolicySchema = z.enum(['group-first', 'device-first']);

export const WarningSummaryOutput = z
  .object({
    groups: z.array(z.number().int()).meta({ description: 'groups with at least one isolation warning' }),
    byCode: z.object(Object.fromEntries(ISOLATION_WARNING_CODES.map((c) => [c, z.number().int()]))).meta({
      description: 'isolation warnings over every group by code; no-iommu counts the devices without a group',
    }),
    devicesWithoutGroup: z.array(z.string()).meta({ description: 'devices no IOMMU translates: listed, never assignable' }),
    host: z.array(HostWarningSchema).meta({ description: 'what the loader could not read or had to assume about the host' }),
  })
  .meta({ id: 'WarningSummary' });

export const SystemOutput = z
  .object({
    version: z.string(),
    policy: PolicySchema,
    iommu: IommuOutput,
    counts: z.object({ groups: z.number().int(), devices: z.number().int(), principals: z.number().int() }),
    warnings: WarningSummaryOutput,
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
