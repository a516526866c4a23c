import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { adminOnly } from '../auth.js';
import { decimal, op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';

const AuditEntry = z
  .object({ seq: z.number().int(), at: z.string(), actor: z.string().nullable(), action: z.string(), target: z.string(), detail: z.unknown().optional() })
  .meta({ id: 'AuditEntry' });

/** Who changed what, when: one row per mutation, written in the mutation's own transaction. */
export const auditRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/audit',
    {
      preHandler: adminOnly,
      schema: {
        ...op('audit', 'listAudit', 'Audit trail, oldest first; page with ?after=<seq> (admin)'),
        querystring: z.object({ after: decimal(0, Number.MAX_SAFE_INTEGER).default(0), limit: decimal(1, 1000).default(100) }),
        response: { 200: z.array(AuditEntry), ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => app.ioasd.store.listAudit({ afterSeq: request.query.after, limit: request.query.limit }),
  );
};
