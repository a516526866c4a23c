import { createReadStream, statSync } from 'node:fs';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { SystemSummary } from '../../core/system-view.js';
import { iommuOut } from '../../schemas/topology.js';
import { VERSION } from '../../version.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';
import { CheckReportOutput, SystemOutput, WhoamiOutput } from '../schemas/system.js';
import { hex } from '../../core/u64.js';
import { deepFreeze, views } from '../views.js';
import { PolicyBody, PolicyReply } from '../schemas/ownership.js';
import { adminOnly, caller } from '../auth.js';
import { DryRunQuery, IdempotencyHeaders, mutate } from '../mutation.js';

export const systemRoutes: FastifyPluginAsyncZod = async (app) => {
  const { system, engine, contexts, quotas, objects } = app.ioasd;
  const principalOut = views(app.ioasd).principal;
  // The summary is the same object until something it shows changes: its answer is made once per change.
  let last: { summary: SystemSummary; answer: z.output<typeof SystemOutput> } | null = null;
  const systemOut = (summary: SystemSummary): z.output<typeof SystemOutput> => {
    if (last?.summary !== summary) {
      const { policy, iommu, counts, warnings } = summary;
      // Frozen: the serializer writes it once (http/serializer.ts).
      last = { summary, answer: deepFreeze({ version: VERSION, policy, iommu: iommuOut(iommu), counts, warnings }) };
    }
    return last.answer;
  };

  app.get(
    '/system',
    { schema: { ...op('system', 'getSystem', 'Policy in force, iommu capabilities, counts and a summary of isolation warnings'), response: { 200: SystemOutput, ...problemResponses(401) } } },
    async () => systemOut(system.summary()),
  );

  app.put(
    '/system/policy',
    {
      preHandler: adminOnly,
      schema: {
        ...op('system', 'setPolicy', 'Switch the ownership policy (admin); EBUSY with blockers while any group is open or device bound'),
        body: PolicyBody,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: PolicyReply, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => ({ status: 200, body: engine.setPolicy(caller(request), request.body.policy) }), {
        // The body's flag stays (SPEC 3), beside ?dryRun=true; the answer keeps the switch's fields.
        dryRun: request.body.dryRun,
        dryRunAnswer: (body) => ({ ...(body as object), changed: false }),
      }),
  );

  app.get(
    '/whoami',
    { schema: { ...op('system', 'whoami', 'The calling principal: role, clearances, quotas and what it uses of them'), response: { 200: WhoamiOutput, ...problemResponses(401) } } },
    async (request) => {
      const me = request.principal;
      const usage = quotas.usageFor(me.id);
      let pasids = 0;
      for (const p of objects.all('pasid-attachment').values()) if (p.principalId === me.id) pasids++;
      const { id, name, role, clearances, quotas: q } = principalOut(me);
      return {
        id,
        name,
        role,
        clearances,
        quotas: q,
        usage: { contexts: contexts.heldBy(me.id), ioas: usage.ioas, mappings: usage.mappings, pinnedBytes: hex(usage.pinnedBytes), pasids },
      };
    },
  );

  app.get(
    '/system/check',
    {
      preHandler: adminOnly,
      schema: {
        ...op('system', 'checkSystem', 'Verify every invariant over memory and the database (admin); 200 either way, ok says which'),
        response: { 200: CheckReportOutput, ...problemResponses(401, 403) },
      },
    },
    async () => app.ioasd.check(),
  );

  app.get(
    '/system/backup',
    {
      preHandler: adminOnly,
      schema: {
        ...op('system', 'backupDatabase', 'A consistent copy of the whole database, taken live (admin): an SQLite file to keep, restore by stopping the server and putting it in place'),
        response: { 200: z.string().meta({ description: 'application/vnd.sqlite3: the database file (SQLite VACUUM INTO, compacted, every committed change up to the request)' }), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      reply.type('application/vnd.sqlite3').header('content-disposition', `attachment; filename="ioasd-${stamp}.db"`).header('cache-control', 'no-store');
      // HEAD (Fastify's copy of this route) answers the headers without making a copy to send nowhere.
      if (request.method === 'HEAD') return reply.send('');
      const file = app.ioasd.backup();
      const { size } = statSync(file.path);
      const stream = createReadStream(file.path);
      // The copy exists only for this answer: it goes once sent, or once the client is gone.
      stream.on('close', () => file.done());
      request.log.info({ bytes: size }, 'database backup sent');
      return reply
        .header('content-length', size)
        .send(stream as unknown as string); // a stream: the schema only documents the body, it never serializes it
    },
  );
};
