import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Caller } from '../../core/allocator.js';
import type { GroupView } from '../../core/groups.js';
import type { GroupHold } from '../../core/model.js';
import { ownerAs, type OwnershipState } from '../../core/ownership.js';
import { regionOut } from '../../schemas/topology.js';
import { caller } from '../auth.js';
import { GroupIdParams, op } from '../schemas/common.js';
import { GroupOutput } from '../schemas/inventory.js';
import { ContainerBody, ContextRef, DeviceOpenOutput, GroupDeviceParams, GroupHoldOutput } from '../schemas/ownership.js';
import { problemResponses } from '../schemas/problem.js';

/** A group as a viewer sees it: the owner is redacted to "other" when it is another principal's. */
export function groupOut(g: GroupView, state: OwnershipState, viewer: Caller): z.output<typeof GroupOutput> {
  const holder = state.holderOf(g.id);
  return { ...g, reservedRegions: g.reservedRegions.map(regionOut), owner: holder ? ownerAs(holder, viewer) : null };
}

function holdOut(h: GroupHold): z.output<typeof GroupHoldOutput> {
  return { groupId: h.groupId, contextId: h.contextId, containerId: h.ioasId, openDevices: Object.fromEntries(h.deviceOpens) };
}

export const groupRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, engine } = app.ioasd;
  const tag = 'groups';

  app.get(
    '/groups',
    { schema: { ...op('groups', 'listGroups', 'IOMMU and virtual groups with derived viability'), response: { 200: z.array(GroupOutput), ...problemResponses(401) } } },
    async (request) => inventory.listGroups().map((g) => groupOut(g, engine.state, caller(request))),
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
    async (request) => groupOut(inventory.getGroup(request.params.id), engine.state, caller(request)),
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
        response: { 200: GroupHoldOutput, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => holdOut(engine.groupFirst().openGroup(caller(request), request.params.id, request.body.contextId)),
  );

  app.post(
    '/groups/:id/close',
    {
      schema: {
        ...op(tag, 'closeGroup', `Close a group: its devices, container membership and ownership go ${gf}`),
        params: GroupIdParams,
        response: { 204: z.undefined(), ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => {
      engine.groupFirst().closeGroup(caller(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.put(
    '/groups/:id/container',
    {
      schema: {
        ...op(tag, 'setContainer', `Put an open group in a container (an ioas), claiming its DMA ownership ${gf}`),
        params: GroupIdParams,
        body: ContainerBody,
        response: { 200: GroupHoldOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request) => holdOut(engine.groupFirst().setContainer(caller(request), request.params.id, request.body.ioasId)),
  );

  app.delete(
    '/groups/:id/container',
    {
      schema: {
        ...op(tag, 'unsetContainer', `Take a group out of its container; the last group out takes the mappings ${gf}`),
        params: GroupIdParams,
        response: { 200: GroupHoldOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request) => holdOut(engine.groupFirst().unsetContainer(caller(request), request.params.id)),
  );

  app.post(
    '/groups/:id/devices/:deviceId/open',
    {
      schema: {
        ...op(tag, 'openGroupDevice', `Open a device of an open group in a container ${gf}`),
        params: GroupDeviceParams,
        response: { 200: DeviceOpenOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request) => engine.groupFirst().openDevice(caller(request), request.params.id, request.params.deviceId),
  );

  app.post(
    '/groups/:id/devices/:deviceId/close',
    {
      schema: {
        ...op(tag, 'closeGroupDevice', `Close one open of a device ${gf}`),
        params: GroupDeviceParams,
        response: { 200: DeviceOpenOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request) => engine.groupFirst().closeDevice(caller(request), request.params.id, request.params.deviceId),
  );
};
