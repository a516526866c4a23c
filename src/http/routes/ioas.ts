import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hex } from '../../core/u64.js';
import {
  AllowedRangesReply,
  CopyBody,
  CopyReply,
  CreateIoasBody,
  IoasIdParams,
  IoasOutput,
  IoasQuery,
  IovaRangesReply,
  MapBatchBody,
  MapBatchReply,
  MapBody,
  MappingOutput,
  MappingsPage,
  MappingsQuery,
  RangesBody,
  UnmapBody,
  UnmapReply,
} from '../schemas/allocator.js';
import { caller } from '../auth.js';
import { op } from '../schemas/common.js';
import { problemResponses } from '../schemas/problem.js';
import { DryRunQuery, DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { views } from '../views.js';

/** I/O address spaces and their DMA mappings (SPEC 5). */
export const ioasRoutes: FastifyPluginAsyncZod = async (app) => {
  const { ioas, mappings } = app.ioasd;
  const v = views(app.ioasd);
  const { range: rangeOut, mapping: mappingOut, ioas: ioasOut } = v;
  const tag = 'ioas';
  const params = IoasIdParams;

  app.get(
    '/ioas',
    {
      schema: {
        ...op(tag, 'listIoas', 'Your address spaces, optionally of one context'),
        querystring: IoasQuery,
        response: { 200: z.array(IoasOutput), ...problemResponses(400, 401) },
      },
    },
    async (request) => ioas.list(caller(request), request.query.contextId).map(ioasOut),
  );

  app.post(
    '/ioas',
    {
      schema: {
        ...op(tag, 'createIoas', 'Allocate an address space (an IOASID) in a context'),
        body: CreateIoasBody,
        headers: IdempotencyHeaders,
        response: { 201: IoasOutput, ...problemResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 201, body: ioasOut(ioas.create(caller(request), request.body.contextId)) })),
  );

  app.get(
    '/ioas/:id',
    { schema: { ...op(tag, 'getIoas', 'One address space'), params, response: { 200: IoasOutput, ...problemResponses(400, 401, 404) } } },
    async (request) => ioasOut(ioas.get(caller(request), request.params.id)),
  );

  app.delete(
    '/ioas/:id',
    {
      schema: {
        ...op(tag, 'deleteIoas', 'Destroy an address space and its mappings; EBUSY while a device, group or hwpt uses it'),
        params,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: DryRunReply, 204: z.undefined(), ...problemResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        ioas.destroy(caller(request), request.params.id);
        return { status: 204 };
      }),
  );

  app.get(
    '/ioas/:id/iova-ranges',
    {
      schema: {
        ...op(tag, 'getIovaRanges', 'Usable IOVA ranges (apertures minus reserved regions) and the alignment'),
        params,
        response: { 200: IovaRangesReply, ...problemResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const space = ioas.get(caller(request), request.params.id);
      return { ranges: space.usableRanges().map(rangeOut), alignment: hex(space.alignment) };
    },
  );

  app.put(
    '/ioas/:id/allowed-ranges',
    {
      schema: {
        ...op(tag, 'setAllowedRanges', 'Replace the allowed IOVA ranges for allocation (empty clears them; device-first)'),
        params,
        body: RangesBody,
        headers: IdempotencyHeaders,
        response: { 200: AllowedRangesReply, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => ({ status: 200, body: { ranges: mappings.setAllowedRanges(caller(request), request.params.id, request.body.ranges).map(rangeOut) } })),
  );

  app.get(
    '/ioas/:id/mappings',
    {
      schema: {
        ...op(tag, 'listMappings', 'Mappings in address order, a page at a time'),
        params,
        querystring: MappingsQuery,
        response: { 200: MappingsPage, ...problemResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const page = mappings.list(caller(request), request.params.id, request.query.cursor, request.query.limit);
      return { items: page.items.map(mappingOut), nextCursor: page.next === null ? null : hex(page.next) };
    },
  );

  app.post(
    '/ioas/:id/mappings',
    {
      schema: {
        ...op(tag, 'map', 'Map user memory at a fixed or allocated IOVA'),
        params,
        body: MapBody,
        headers: IdempotencyHeaders,
        response: { 201: MappingOutput, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 201, body: mappingOut(mappings.map(caller(request), request.params.id, request.body)) })),
  );

  app.post(
    '/ioas/:id/mappings/batch',
    {
      schema: {
        ...op(tag, 'mapBatch', 'Map several areas, all or nothing'),
        params,
        body: MapBatchBody,
        headers: IdempotencyHeaders,
        response: { 201: MapBatchReply, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => ({ status: 201, body: { mappings: mappings.mapBatch(caller(request), request.params.id, request.body.mappings).map(mappingOut) } })),
  );

  app.post(
    '/ioas/:id/unmap',
    {
      schema: {
        ...op(tag, 'unmap', 'Unmap whole mappings in a range, or all'),
        params,
        body: UnmapBody,
        headers: IdempotencyHeaders,
        response: { 200: UnmapReply, ...problemResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: { unmappedBytes: hex(mappings.unmap(caller(request), request.params.id, request.body)) } })),
  );

  app.post(
    '/ioas/:id/copy',
    {
      schema: {
        ...op(tag, 'copy', 'Map what another address space maps at a range into this one (device-first)'),
        params,
        body: CopyBody,
        headers: IdempotencyHeaders,
        response: { 201: CopyReply, ...problemResponses(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        const pieces = mappings.copy(caller(request), request.params.id, request.body);
        return { status: 201, body: { iova: hex(pieces[0]!.iova), length: hex(request.body.length), mappings: pieces.map(mappingOut) } };
      }),
  );
};
