import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { caller } from '../auth.js';
import { op } from '../schemas/common.js';
import { HwptBody, HwptIdParams, HwptOutput } from '../schemas/ownership.js';
import { problemResponses } from '../schemas/problem.js';
import { IdempotencyHeaders, mutate } from '../mutation.js';
import { views } from '../views.js';

/** Hardware page tables (device-first): automatic ones appear with attachments; manual ones are allocated here. */
export const hwptRoutes: FastifyPluginAsyncZod = async (app) => {
  const { engine } = app.ioasd;
  const tag = 'hwpts';
  const out = views(app.ioasd).hwpt;

  app.get(
    '/hwpts',
    { schema: { ...op(tag, 'listHwpts', 'Your hwpts, automatic and manual'), response: { 200: z.array(HwptOutput), ...problemResponses(401) } } },
    async (request) => engine.hwpts.list(caller(request)).map(out),
  );

  app.post(
    '/hwpts',
    {
      schema: {
        ...op(tag, 'allocHwpt', 'Allocate a paging hwpt on an ioas, or a nested hwpt on a nestParent hwpt (device-first)'),
        body: HwptBody,
        headers: IdempotencyHeaders,
        response: { 201: HwptOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      // The schema admits exactly one of ptId and its aliases.
      const b = request.body;
      const ptId = 'ptId' in b ? b.ptId : 'ioasId' in b ? b.ioasId : b.parentId;
      const { deviceId, nestParent, pasid, dirtyTracking, data } = b;
      engine.deviceFirst();
      return mutate(request, reply, () => ({ status: 201, body: out(engine.hwpts.alloc(caller(request), { deviceId, ptId, nestParent, pasid, dirtyTracking, data })) }));
    },
  );

  app.get(
    '/hwpts/:id',
    { schema: { ...op(tag, 'getHwpt', 'One hwpt'), params: HwptIdParams, response: { 200: HwptOutput, ...problemResponses(400, 401, 404) } } },
    async (request) => out(engine.hwpts.get(caller(request), request.params.id)),
  );

  app.delete(
    '/hwpts/:id',
    {
      schema: {
        ...op(tag, 'deleteHwpt', 'Destroy a hwpt; EBUSY while devices, PASIDs or nested children use it (device-first)'),
        params: HwptIdParams,
        headers: IdempotencyHeaders,
        response: { 204: z.undefined(), ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      engine.deviceFirst();
      return mutate(request, reply, () => {
        engine.hwpts.delete(caller(request), request.params.id);
        return { status: 204 };
      });
    },
  );
};
