import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Caller } from '../../core/caller.js';
import type { GroupView } from '../../core/groups.js';
import { caller } from '../auth.js';
import { GroupIdParams, op } from '../schemas/common.js';
import { GroupOutput } from '../schemas/inventory.js';
import { ContainerBody, ContextRef, DeviceOpenOutput, GroupDeviceParams, GroupHoldOutput } from '../schemas/ownership.js';
import { problemResponses } from '../schemas/problem.js';
import { DryRunQuery, DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { views } from '../views.js';

export const groupRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, engine } = app.ioasd;
  const tag = 'groups';
  const v = views(app.ioasd);
  const groupOut = (g: GroupView, viewer: Caller) => v.group(g, viewer);
  const holdOut = v.hold;

  app.get(
    '/groups',
    { schema: { ...op('groups', 'listGroups', 'IOMMU and virtual groups with derived viability'), response: { 200: z.array(GroupOutput), ...problemResponses(401) } } },
    async (request) => inventory.listGroups().map((g) => groupOut(g, caller(request))),
  );

  app.get(
    '/groups/:id',
    {
      schema: {
        ...op('groups', 'getGroup', 'One group: devices, viable, blockers, owner'),
        params: GroupIdParams,
        response: { 200: GroupOutput, ...problemResponses(400, 401, 404) },
      },
    },
    async (request) => groupOut(inventory.getGroup(request.params.id), caller(request)),
  );

  // ---- group-first --------------------------------------------------------------------------------
  const gf = '(group-first)';

  app.post(
    '/groups/:id/open',
    {
      schema: {
        ...op(tag, 'openGroup', `Open a group in a context ${gf}`),
        params: GroupIdParams,
        body: ContextRef,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([GroupHoldOutput, DryRunReply]), ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: holdOut(engine.groupFirst().openGroup(caller(request), request.params.id, request.body.contextId)) })),
  );

  app.post(
    '/groups/:id/close',
    {
      schema: {
        ...op(tag, 'closeGroup', `Close a group: its devices, container membership and ownership go ${gf}`),
        params: GroupIdParams,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: DryRunReply, 204: z.undefined(), ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        engine.groupFirst().closeGroup(caller(request), request.params.id);
        return { status: 204 };
      }),
  );

  app.put(
    '/groups/:id/container',
    {
      schema: {
        ...op(tag, 'setContainer', `Put an open group in a container (an ioas), claiming its DMA ownership ${gf}`),
        params: GroupIdParams,
        body: ContainerBody,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([GroupHoldOutput, DryRunReply]), ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: holdOut(engine.groupFirst().setContainer(caller(request), request.params.id, request.body.ioasId)) })),
  );

  app.delete(
    '/groups/:id/container',
    {
      schema: {
        ...op(tag, 'unsetContainer', `Take a group out of its container; the last group out takes the mappings ${gf}`),
        params: GroupIdParams,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([GroupHoldOutput, DryRunReply]), ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: holdOut(engine.groupFirst().unsetContainer(caller(request), request.params.id)) })),
  );

  app.post(
    '/groups/:id/devices/:deviceId/open',
    {
      schema: {
        ...op(tag, 'openGroupDevice', `Open a device of an open group in a container ${gf}`),
        params: GroupDeviceParams,
        headers: IdempotencyHeaders,
        response: { 200: DeviceOpenOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: engine.groupFirst().openDevice(caller(request), request.params.id, request.params.deviceId) })),
  );

  app.post(
    '/groups/:id/devices/:deviceId/close',
    {
      schema: {
        ...op(tag, 'closeGroupDevice', `Close one open of a device ${gf}`),
        params: GroupDeviceParams,
        headers: IdempotencyHeaders,
        response: { 200: DeviceOpenOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: engine.groupFirst().closeDevice(caller(request), request.params.id, request.params.deviceId) })),
  );
};
