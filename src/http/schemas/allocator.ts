import { z } from 'zod';
import { RangeOutput } from '../../schemas/topology.js';
import { HexU64, U64Input } from '../../schemas/u64.js';
import { decimal, oneOf } from './common.js';

export const ContextOutput = z
  .object({
    id: z.string(),
    principalId: z.string(),
    name: z.string().nullable(),
    leaseSeconds: z.number().int().nullable(),
    expiresAt: z.string().nullable().meta({ description: 'when the lease runs out (ISO 8601), or null' }),
    createdAt: z.string(),
    ioas: z.array(z.number().int()).meta({ description: 'ids of the address spaces the context holds' }),
  })
  .meta({ id: 'Context' });

const LeaseSeconds = z.number().int().min(1).max(30 * 24 * 3600);

export const CreateContextBody = z
  .object({ name: z.string().min(1).max(64).optional(), leaseSeconds: LeaseSeconds.optional() })
  .strict()
  .prefault({});

export const RenewContextBody = z.object({ leaseSeconds: LeaseSeconds.optional() }).strict().prefault({});

export const IoasIdParams = z.object({ id: decimal(0, 2 ** 32 - 1).meta({ description: 'ioas id (decimal)' }) });

export const IoasOutput = z
  .object({
    id: z.number().int(),
    contextId: z.string(),
    alignment: HexU64,
    allowedRanges: z.array(RangeOutput),
    mappings: z.number().int().meta({ description: 'number of mappings' }),
    createdAt: z.string(),
  })
  .meta({ id: 'Ioas' });

export const CreateIoasBody = z.object({ contextId: z.string().min(1).max(64) }).strict();
export const IoasQuery = z.object({ contextId: z.string().min(1).max(64).optional() });

export const MappingOutput = z
  .object({ iova: HexU64, length: HexU64, userAddress: HexU64, read: z.boolean(), write: z.boolean() })
  .meta({ id: 'Mapping' });

export const MapBody = z
  .object({
    iova: U64Input.optional().meta({ description: 'fixed IOVA; absent: allocated (device-first only)' }),
    length: U64Input,
    userAddress: U64Input,
    read: z.boolean().default(true),
    write: z.boolean().default(true),
  })
  .strict()
  .meta({ id: 'MapRequest' });

export const MapBatchBody = z.object({ mappings: z.array(MapBody).min(1).max(4096) }).strict();
export const MapBatchReply = z.object({ mappings: z.array(MappingOutput) });

export const UnmapBody = oneOf(
  [
    z.object({ iova: U64Input, length: U64Input }).strict().meta({ title: 'range', description: 'every mapping within [iova, iova+length)' }),
    z.object({ all: z.literal(true) }).strict().meta({ title: 'all', description: 'every mapping of the ioas' }),
  ],
  'give {iova, length} or {all: true}',
).meta({ id: 'UnmapRequest', description: '{iova, length} or {all: true}' });

export const UnmapReply = z.object({ unmappedBytes: HexU64 });

export const CopyBody = z
  .object({
    srcIoasId: z.number().int().min(0).max(2 ** 32 - 1),
    srcIova: U64Input,
    length: U64Input,
    dstIova: U64Input.optional(),
    read: z.boolean().default(true),
    write: z.boolean().default(true),
  })
  .strict()
  .meta({ id: 'CopyRequest' });

export const CopyReply = z.object({ iova: HexU64, length: HexU64, mappings: z.array(MappingOutput) });

export const RangesBody = z.object({ ranges: z.array(z.object({ start: U64Input, last: U64Input }).strict()).max(1024) }).strict();
export const AllowedRangesReply = z.object({ ranges: z.array(RangeOutput) });
export const IovaRangesReply = z.object({ ranges: z.array(RangeOutput), alignment: HexU64 }).meta({ id: 'IovaRanges' });

export const MappingsQuery = z.object({
  cursor: U64Input.optional().meta({ description: 'nextCursor of the previous page' }),
  limit: decimal(1, 10_000).default(1000),
});
export const MappingsPage = z.object({ items: z.array(MappingOutput), nextCursor: HexU64.nullable() }).meta({ id: 'MappingsPage' });
