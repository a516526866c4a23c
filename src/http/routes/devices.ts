import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeviceInput, DeviceOutput, deviceOut, toDevice } from '../../schemas/topology.js';
import { actor, adminOnly } from '../auth.js';
import { op, StringIdParams } from '../schemas/common.js';
import { DeviceQuery, SetDriverBody } from '../schemas/inventory.js';
import { problemResponses } from '../schemas/problem.js';

export const deviceRoutes: FastifyPluginAsyncZod = async (app) => {
  const { inventory } = app.ioasd;
  const tag = 'devices';

  app.get(
    '/devices',
    {
      schema: {
        ...op(tag, 'listDevices', 'Devices, filtered by ?group=&driver=&kind=&free='),
        querystring: DeviceQuery,
        response: { 200: z.array(DeviceOutput), ...problemResponses(400, 401) },
      },
    },
    async (request) => inventory.listDevices(request.query).map(deviceOut),
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
    async (request, reply) => reply.code(201).send(deviceOut(inventory.addDevice(toDevice(request.body), actor(request)))),
  );

  app.get(
    '/devices/:id',
    {
      schema: { ...op(tag, 'getDevice', 'One device'), params: StringIdParams, response: { 200: DeviceOutput, ...problemResponses(401, 404) } },
    },
    async (request) => deviceOut(inventory.getDevice(request.params.id)),
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
    async (request) => deviceOut(inventory.setDriver(request.params.id, request.body.driver, actor(request))),
  );
};
