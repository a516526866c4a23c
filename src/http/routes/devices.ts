import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeviceInput, DeviceOutput, deviceOut, toDevice } from '../../schemas/topology.js';
import { actor, adminOnly, caller } from '../auth.js';
import { op, StringIdParams } from '../schemas/common.js';
import { DeviceQuery, SetDriverBody } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';
import { AttachBody, BindingOutput, ContextRef, DetachBody } from '../schemas/ownership.js';
import type { Binding } from '../../core/model.js';

export function bindingOut(b: Binding, hwpts: ReadonlyMap<number, { ioasId: number }>): z.output<typeof BindingOutput> {
  return {
    deviceId: b.deviceId,
    groupId: b.groupId,
    contextId: b.contextId,
    hwptId: b.hwptId,
    ioasId: b.hwptId !== null ? (hwpts.get(b.hwptId)?.ioasId ?? null) : b.accessIoasId,
    pasids: [...b.pasids].map(([pasid, hwptId]) => ({ pasid, hwptId })),
  };
}

export const deviceRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory, engine } = app.ioasd;
  const tag = 'devices';
  const df = '(device-first)';
  const out = (b: Binding) => bindingOut(b, engine.state.hwpts);

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
        response: { 201: DeviceOutput, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const device = inventory.addDevice(toDevice(request.body), actor(request));
      return reply.code(201).send(deviceOut(device, inventory.groupOf(device)));
    },
  );

  app.get(
    '/devices/:id',
    {
      schema: { ...op(tag, 'getDevice', 'One device'), params: StringIdParams, response: { 200: DeviceOutput, ...problemResponses(401, 404) } },
    },
    async (request) => {
      const device = inventory.getDevice(request.params.id);
      return deviceOut(device, inventory.groupOf(device));
    },
  );

  app.delete(
    '/devices/:id',
    {
      preHandler: adminOnly,
      schema: {
        ...op(tag, 'deleteDevice', 'Hot-unplug a device and the VFs or mdevs it parents (admin)'),
        params: StringIdParams,
        response: { 204: z.undefined(), ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      inventory.deleteDevice(request.params.id, actor(request));
      return reply.code(204).send();
    },
  );

  app.put(
    '/devices/:id/driver',
    {
      preHandler: adminOnly,
      schema: {
        ...op(tag, 'setDeviceDriver', 'Bind the device to another driver, like driverctl (admin)'),
        params: StringIdParams,
        body: SetDriverBody,
        response: { 200: DeviceOutput, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const device = inventory.setDriver(request.params.id, request.body.driver, actor(request));
      return deviceOut(device, inventory.groupOf(device));
    },
  );

  app.post(
    '/devices/:id/bind',
    {
      schema: {
        ...op(tag, 'bindDevice', `Bind a device to a context, claiming DMA ownership of its group ${df}`),
        params: StringIdParams,
        body: ContextRef,
        response: { 200: BindingOutput, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => out(engine.deviceFirst().bind(caller(request), request.params.id, request.body.contextId)),
  );

  app.post(
    '/devices/:id/unbind',
    {
      schema: {
        ...op(tag, 'unbindDevice', `Unbind: PASIDs and the attachment go first; the last device out releases the group ${df}`),
        params: StringIdParams,
        response: { 204: z.undefined(), ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request, reply) => {
      engine.deviceFirst().unbind(caller(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/devices/:id/attach',
    {
      schema: {
        ...op(tag, 'attachDevice', `Attach a bound device (or one PASID of it) to an ioas or hwpt; replace swaps atomically ${df}`),
        params: StringIdParams,
        body: AttachBody,
        response: { 200: BindingOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request) => out(engine.deviceFirst().attach(caller(request), request.params.id, request.body)),
  );

  app.post(
    '/devices/:id/detach',
    {
      schema: {
        ...op(tag, 'detachDevice', `Detach the device, or one PASID; not attached is a no-op ${df}`),
        params: StringIdParams,
        body: DetachBody,
        response: { 200: BindingOutput, ...problemResponses(400, 401, 404, 422) },
      },
    },
    async (request) => out(engine.deviceFirst().detach(caller(request), request.params.id, request.body.pasid)),
  );
};
