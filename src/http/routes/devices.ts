import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeviceInput, DeviceOutput, deviceOut, toDevice } from '../../schemas/topology.js';
import { actor, adminOnly, caller } from '../auth.js';
import { op, StringIdParams } from '../schemas/common.js';
import { DeviceQuery, SetDriverBody } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';
import { DryRunQuery, DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { AttachBody, BindingOutput, ContextRef, DetachBody } from '../schemas/ownership.js';
import { views } from '../views.js';
import { absentBodyIsEmptyObject } from '../empty-body.js';

export const deviceRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, engine } = app.ioasd;
  const tag = 'devices';
  const df = '(device-first)';
  const { binding: out, device } = views(app.ioasd);

  app.get(
    '/devices',
    {
      schema: {
        ...op(tag, 'listDevices', 'Devices, filtered by ?group=&driver=&kind=&free='),
        querystring: DeviceQuery,
        response: { 200: z.array(DeviceOutput), ...problemResponses(400, 401) },
      },
    },
    async (request) => {
      const groups = inventory.groupRecords();
      return inventory.listDevices(request.query).map((d) => deviceOut(d, d.groupId === null ? undefined : groups.get(d.groupId)));
    },
  );

  app.post(
    '/devices',
    {
      preHandler: adminOnly,
      schema: {
        ...op(tag, 'addDevice', 'Hot-plug a device; a group it names that does not exist is created (admin)'),
        body: DeviceInput,
        headers: IdempotencyHeaders,
        response: { 201: DeviceOutput, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 201, body: device(inventory.addDevice(toDevice(request.body), actor(request))) })),
  );

  app.get(
    '/devices/:id',
    {
      schema: { ...op(tag, 'getDevice', 'One device'), params: StringIdParams, response: { 200: DeviceOutput, ...problemResponses(401, 404) } },
    },
    async (request) => device(inventory.getDevice(request.params.id)),
  );

  app.delete(
    '/devices/:id',
    {
      preHandler: adminOnly,
      schema: {
        ...op(tag, 'deleteDevice', 'Hot-unplug a device and the VFs or mdevs it parents (admin)'),
        params: StringIdParams,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: DryRunReply, 204: z.undefined(), ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        inventory.deleteDevice(request.params.id, actor(request));
        return { status: 204 };
      }),
  );

  app.put(
    '/devices/:id/driver',
    {
      preHandler: adminOnly,
      schema: {
        ...op(tag, 'setDeviceDriver', 'Bind the device to another driver, like driverctl (admin)'),
        params: StringIdParams,
        body: SetDriverBody,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([DeviceOutput, DryRunReply]), ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: device(inventory.setDriver(request.params.id, request.body.driver, actor(request))) })),
  );

  app.post(
    '/devices/:id/bind',
    {
      schema: {
        ...op(tag, 'bindDevice', `Bind a device to a context, claiming DMA ownership of its group ${df}`),
        params: StringIdParams,
        body: ContextRef,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([BindingOutput, DryRunReply]), ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: out(engine.deviceFirst().bind(caller(request), request.params.id, request.body.contextId)) })),
  );

  app.post(
    '/devices/:id/unbind',
    {
      schema: {
        ...op(tag, 'unbindDevice', `Unbind: PASIDs and the attachment go first; the last device out releases the group ${df}`),
        params: StringIdParams,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: DryRunReply, 204: z.undefined(), ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        engine.deviceFirst().unbind(caller(request), request.params.id);
        return { status: 204 };
      }),
  );

  app.post(
    '/devices/:id/attach',
    {
      schema: {
        ...op(tag, 'attachDevice', `Attach a bound device (or one PASID of it) to an ioas or hwpt; replace swaps atomically ${df}`),
        params: StringIdParams,
        body: AttachBody,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: z.union([BindingOutput, DryRunReply]), ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: out(engine.deviceFirst().attach(caller(request), request.params.id, request.body)) })),
  );

  app.post(
    '/devices/:id/detach',
    {
      ...absentBodyIsEmptyObject,
      schema: {
        ...op(tag, 'detachDevice', `Detach the device, or one PASID; not attached is a no-op ${df}`),
        params: StringIdParams,
        body: DetachBody,
        headers: IdempotencyHeaders,
        response: { 200: BindingOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: out(engine.deviceFirst().detach(caller(request), request.params.id, request.body.pasid)) })),
  );
};
