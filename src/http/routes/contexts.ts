import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { caller } from '../auth.js';
import { op, StringIdParams } from '../schemas/common.js';
import { ContextOutput, CreateContextBody, RenewContextBody } from '../schemas/allocator.js';
import { problemResponses } from '../schemas/problem.js';
import { DryRunQuery, DryRunReply, IdempotencyHeaders, mutate } from '../mutation.js';
import { views } from '../views.js';

/** Contexts: the unit of ownership, like an open /dev/iommu or container file descriptor. */
export const contextRoutes: FastifyPluginAsyncZod = async (app) => {
  const { contexts } = app.ioasd;
  const tag = 'contexts';
  const out = views(app.ioasd).context;

  app.get(
    '/contexts',
    { schema: { ...op(tag, 'listContexts', 'Your contexts (admin: all)'), response: { 200: z.array(ContextOutput), ...problemResponses(401) } } },
    async (request) => contexts.list(caller(request)).map(out),
  );

  app.post(
    '/contexts',
    {
      schema: {
        ...op(tag, 'createContext', 'Open a context, optionally with a lease that must be renewed'),
        body: CreateContextBody,
        headers: IdempotencyHeaders,
        response: { 201: ContextOutput, ...problemResponses(400, 401, 409) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 201, body: out(contexts.create(caller(request), request.body)) })),
  );

  app.get(
    '/contexts/:id',
    { schema: { ...op(tag, 'getContext', 'One context'), params: StringIdParams, response: { 200: ContextOutput, ...problemResponses(401, 404) } } },
    async (request) => out(contexts.get(caller(request), request.params.id)),
  );

  app.delete(
    '/contexts/:id',
    {
      schema: {
        ...op(tag, 'deleteContext', 'Close a context: everything it holds is released in one transaction'),
        params: StringIdParams,
        querystring: DryRunQuery,
        headers: IdempotencyHeaders,
        response: { 200: DryRunReply, 204: z.undefined(), ...problemResponses(401, 404) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        contexts.delete(caller(request), request.params.id);
        return { status: 204 };
      }),
  );

  app.post(
    '/contexts/:id/renew',
    {
      schema: {
        ...op(tag, 'renewContext', 'Extend the lease from now (optionally with a new length)'),
        params: StringIdParams,
        body: RenewContextBody,
        headers: IdempotencyHeaders,
        response: { 200: ContextOutput, ...problemResponses(400, 401, 404) },
      },
    },
    async (request, reply) => mutate(request, reply, () => ({ status: 200, body: out(contexts.renew(caller(request), request.params.id, request.body.leaseSeconds)) })),
  );
};
