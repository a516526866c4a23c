import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actor, adminOnly } from '../auth.js';
import { op, StringIdParams } from '../schemas/common.js';
import {
  CreatePrincipalBody,
  PatchPrincipalBody,
  PatchPrincipalReply,
  PrincipalOutput,
  PrincipalWithToken,
} from '../schemas/principals.js';
import { problemResponses } from '../schemas/problem.js';
import { IdempotencyHeaders, mutate } from '../mutation.js';
import { views } from '../views.js';

/** Admin management of API identities: roles, clearances, quotas and tokens. */
export const principalRoutes: FastifyPluginAsyncZod = async (app) => {
  const { principals } = app.ioasd;
  app.addHook('preHandler', adminOnly);
  const tag = 'principals';
  const principalOut = views(app.ioasd).principal;

  app.get(
    '/principals',
    { schema: { ...op(tag, 'listPrincipals', 'List principals (admin)'), response: { 200: z.array(PrincipalOutput), ...problemResponses(401, 403) } } },
    async () => principals.list().map(principalOut),
  );

  app.post(
    '/principals',
    {
      schema: {
        ...op(tag, 'createPrincipal', 'Create a principal; its token is in this answer only (admin)'),
        body: CreatePrincipalBody,
        headers: IdempotencyHeaders,
        response: { 201: PrincipalWithToken, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        const { principal, token } = principals.create(request.body, actor(request), new Date().toISOString());
        return { status: 201, body: { ...principalOut(principal), token } };
      }),
  );

  app.get(
    '/principals/:id',
    {
      schema: {
        ...op(tag, 'getPrincipal', 'One principal (admin)'),
        params: StringIdParams,
        response: { 200: PrincipalOutput, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => principalOut(principals.get(request.params.id)),
  );

  app.patch(
    '/principals/:id',
    {
      schema: {
        ...op(tag, 'updatePrincipal', 'Change name, role, clearances or quotas, or rotate the token (admin)'),
        params: StringIdParams,
        body: PatchPrincipalBody,
        headers: IdempotencyHeaders,
        response: { 200: PatchPrincipalReply, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        const { principal, token } = principals.update(request.params.id, request.body, actor(request));
        return { status: 200, body: token === undefined ? principalOut(principal) : { ...principalOut(principal), token } };
      }),
  );

  app.delete(
    '/principals/:id',
    {
      schema: {
        ...op(tag, 'deletePrincipal', 'Delete a principal (admin)'),
        params: StringIdParams,
        headers: IdempotencyHeaders,
        response: { 204: z.undefined(), ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) =>
      mutate(request, reply, () => {
        principals.delete(request.params.id, actor(request));
        return { status: 204 };
      }),
  );
};
