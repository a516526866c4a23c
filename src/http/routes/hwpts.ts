import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Hwpt } from '../../core/model.js';
import { caller } from '../auth.js';
import { op } from '../schemas/common.js';
import { HwptBody, HwptIdParams, HwptOutput } from '../schemas/ownership.js';
import { problemResponses } from '../schemas/problem.js';

function hwptOut(h: Hwpt): z.output<typeof HwptOutput> {
  return {
    id: h.id,
    contextId: h.contextId,
    kind: h.kind,
    ioasId: h.ioasId,
    parentId: h.parentId,
    auto: h.auto,
    nestParent: h.nestParent,
    pasid: h.pasid,
    dirtyTracking: h.dirtyTracking,
    ...(h.data === null ? {} : { data: h.data }),
    devices: [...h.devices].sort(),
    pasids: [...h.pasidUsers].sort(),
    children: [...h.children].sort((a, b) => a - b),
    createdAt: h.createdAt,
  };
}

/** Hardware page tables (device-first): automatic ones appear with attachments; manual ones are allocated here. */
export const hwptRoutes: FastifyPluginAsyncZod = async (app) => {
  const { engine } = app.ioasd;
  const tag = 'hwpts';

  app.get(
    '/hwpts',
    { schema: { ...op(tag, 'listHwpts', 'Your hwpts, automatic and manual'), response: { 200: z.array(HwptOutput), ...problemResponses(401) } } },
    async (request) => engine.deviceFirstView.listHwpts(caller(request)).map(hwptOut),
  );

  app.post(
    '/hwpts',
    {
      schema: {
        ...op(tag, 'allocHwpt', 'Allocate a paging hwpt on an ioas, or a nested hwpt on a nestParent hwpt (device-first)'),
        body: HwptBody,
        response: { 201: HwptOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      // The schema admits exactly one of ptId and its aliases.
      const b = request.body;
      const ptId = 'ptId' in b ? b.ptId : 'ioasId' in b ? b.ioasId : b.parentId;
      const hwpt = engine.deviceFirst().allocHwpt(caller(request), { deviceId: b.deviceId, ptId, nestParent: b.nestParent, pasid: b.pasid, dirtyTracking: b.dirtyTracking, data: b.data });
      return reply.code(201).send(hwptOut(hwpt));
    },
  );

  app.get(
    '/hwpts/:id',
    { schema: { ...op(tag, 'getHwpt', 'One hwpt'), params: HwptIdParams, response: { 200: HwptOutput, ...problemResponses(400, 401, 404) } } },
    async (request) => hwptOut(engine.deviceFirstView.getHwpt(caller(request), request.params.id)),
  );

  app.delete(
    '/hwpts/:id',
    {
      schema: {
        ...op(tag, 'deleteHwpt', 'Destroy a hwpt; EBUSY while devices, PASIDs or nested children use it (device-first)'),
        params: HwptIdParams,
        response: { 204: z.undefined(), ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      engine.deviceFirst().deleteHwpt(caller(request), request.params.id);
      return reply.code(204).send();
    },
  );
};
