import fastifySwagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { VERSION } from '../../version.js';
import { absentBodyIsEmptyObject } from '../empty-body.js';
import { EXAMPLES, type OperationExample } from '../schemas/examples.js';
import { problemResponses } from '../schemas/problem.js';

/** The OpenAPI 3.1 document generated from the route schemas, at /openapi.json, and Swagger UI at /docs. */
export async function openapiPlugin(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ioasd',
        version: VERSION,
        description: 'Control plane for IOMMU groups, I/O address spaces and DMA ownership (VFIO group-first and iommufd device-first).',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: openApiTransform,
    transformObject: openApiTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/**
 * The document states what the service enforces beyond each route's own schemas: the problem
 * answers every operation can get from the HTTP layer (405 another method, 414 a long URL, 413/415
 * for a body, 429 under /v1), the media type of an event stream, and a working example for every
 * request (schemas/examples.ts), placed where Swagger UI's "Try it out" takes it: the parameter's
 * and the media type's `example`.
 */
export const openApiTransform: SwaggerTransform = (input) => {
  const schema = input.schema as { hide?: boolean; body?: unknown; response?: Record<string, unknown>; operationId?: string } | undefined;
  // A route that takes an absent body as {} (empty-body.ts) says its body is optional.
  if (schema?.operationId && [(input.route as { onRequest?: unknown }).onRequest].flat().includes(absentBodyIsEmptyObject.onRequest)) optionalBodies.add(schema.operationId);
  if (schema && !schema.hide) {
    const statuses: Parameters<typeof problemResponses> = [405, 414];
    if (schema.body !== undefined) statuses.push(413, 415);
    if (input.url.startsWith('/v1/')) statuses.push(429);
    // A server-sent event stream (@fastify/sse's `sse` route option) answers text/event-stream.
    const produces = (input.route as { sse?: unknown }).sse ? { produces: ['text/event-stream'] } : {};
    input = { ...input, schema: { ...schema, ...produces, response: { ...problemResponses(...statuses), ...schema.response } } };
  }
  return jsonSchemaTransform(input as Parameters<typeof jsonSchemaTransform>[0]);
};

/** operationIds of the routes whose body may be left out (@fastify/swagger marks every body required). */
const optionalBodies = new Set<string>();

interface Operation {
  operationId?: string;
  parameters?: { in: string; name: string; example?: unknown; schema?: { type?: unknown } }[];
  requestBody?: { required?: boolean; content: Record<string, { example?: unknown }> };
  responses?: Record<string, unknown>;
}

export const openApiTransformObject: SwaggerTransformObject = (input) => {
  const doc = jsonSchemaTransformObject(input) as { paths?: Record<string, Record<string, Operation>> };
  for (const operations of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const example = operation.operationId === undefined ? undefined : EXAMPLES[operation.operationId];
      if (example) addExample(operation, example);
      if (operation.requestBody && operation.operationId !== undefined && optionalBodies.has(operation.operationId)) operation.requestBody.required = false;
      // Responses in status order, so the document reads (and diffs) in a stable order.
      if (operation.responses) operation.responses = Object.fromEntries(Object.entries(operation.responses).sort(([a], [b]) => a.localeCompare(b)));
    }
  }
  return doc as ReturnType<SwaggerTransformObject>;
};

function addExample(operation: Operation, example: OperationExample): void {
  for (const p of operation.parameters ?? []) {
    const values = p.in === 'path' ? example.params : p.in === 'query' ? example.query : undefined;
    // Numbers in URLs are text: a string-typed parameter gets its example as text.
    if (values && p.name in values) p.example = p.schema?.type === 'string' ? String(values[p.name]) : values[p.name];
  }
  const media = operation.requestBody?.content['application/json'];
  if (media && example.body !== undefined) media.example = example.body;
}
