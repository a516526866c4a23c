import { z } from 'zod';
import { HexU64, U64Input } from '../../schemas/u64.js';

const Label = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/);
const Count = z.number().int().min(0).max(2 ** 31 - 1);

export const QuotasInput = z
  .object({ maxIoas: Count, maxMappings: Count, maxPinnedBytes: U64Input, maxPasids: Count, maxContexts: Count })
  .partial()
  .strict();

export const QuotasOutput = z
  .object({ maxIoas: z.number().int(), maxMappings: z.number().int(), maxPinnedBytes: HexU64, maxPasids: z.number().int(), maxContexts: z.number().int() })
  .meta({ id: 'Quotas' });

export const RoleSchema = z.enum(['admin', 'user']);

export const PrincipalOutput = z
  .object({
    id: z.string(),
    name: z.string(),
    role: RoleSchema,
    clearances: z.array(z.string()),
    quotas: QuotasOutput,
    createdAt: z.string(),
  })
  .meta({ id: 'Principal' });

export const PrincipalWithToken = PrincipalOutput.extend({
  token: z.string().meta({ description: 'bearer token; shown only in this answer' }),
}).meta({ id: 'PrincipalWithToken' });

export const CreatePrincipalBody = z
  .object({
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9._@-]+$/),
    role: RoleSchema.default('user'),
    clearances: z.array(Label).max(64).default([]),
    quotas: QuotasInput.default({}),
  })
  .strict();

export const PatchPrincipalBody = z
  .object({
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9._@-]+$/),
    role: RoleSchema,
    clearances: z.array(Label).max(64),
    quotas: QuotasInput,
    rotateToken: z.boolean().meta({ description: 'issue a new token (answered once); the old one stops working' }),
  })
  .partial()
  .strict();

export const PatchPrincipalReply = PrincipalOutput.extend({ token: z.string().optional() });
