import type { FastifyInstance, InjectOptions } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/** Reading the served OpenAPI document in tests: its operations and the requests their examples make. */

export interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  example?: unknown;
  schema?: JsonSchema;
}

export type JsonSchema = Record<string, unknown>;

export interface Operation {
  method: string;
  path: string;
  operationId: string;
  parameters: Parameter[];
  body?: { schema: JsonSchema; example?: unknown };
  responses: Record<string, unknown>;
}

export interface OpenApiDoc {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: { schemas: Record<string, JsonSchema> };
}

export function operationsOf(doc: OpenApiDoc): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(methods)) {
      const op = raw as { operationId: string; parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: JsonSchema; example?: unknown }> }; responses: Record<string, unknown> };
      const media = op.requestBody?.content['application/json'];
      out.push({
        method: method.toUpperCase(),
        path,
        operationId: op.operationId,
        parameters: op.parameters ?? [],
        ...(media ? { body: media } : {}),
        responses: op.responses,
      });
    }
  }
  return out;
}

/** The request Swagger UI's "Try it out" makes from an operation's examples, with some values replaced. */
export function exampleRequest(op: Operation, replace: (value: unknown) => unknown = (v) => v): InjectOptions {
  let url = op.path;
  const query = new URLSearchParams();
  for (const p of op.parameters) {
    if (p.example === undefined) continue;
    const value = String(replace(p.example));
    if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(value));
    else if (p.in === 'query') query.set(p.name, value);
  }
  const qs = query.toString();
  const req: InjectOptions = { method: op.method as InjectOptions['method'], url: qs ? `${url}?${qs}` : url };
  if (op.body) req.payload = deepReplace(op.body.example, replace) as InjectOptions['payload'];
  return req;
}

function deepReplace(value: unknown, replace: (v: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => deepReplace(v, replace));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepReplace(v, replace)]));
  return replace(value);
}

/** A refusal of the request's form (its schema), as opposed to one of the state: a 400 naming body, params or query. */
export function isShapeRefusal(status: number, body: { problems?: { path: string }[] }): boolean {
  return status === 400 && (body.problems ?? []).some((p) => /^(body|params|query)([.[]|$)/.test(p.path));
}

/** Whether the operation answers a server-sent event stream (text/event-stream), which stays open. */
export function isEventStream(op: Operation): boolean {
  const ok = op.responses['200'] as { content?: Record<string, unknown> } | undefined;
  return ok?.content?.['text/event-stream'] !== undefined;
}

/** What a test reads of an answer: an ordinary one whole, an event stream up to its first bytes. */
export interface Answer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  json(): unknown;
}

/**
 * Injects a request. When `stream` says it may open an event stream, it is read as a client would:
 * the answer resolves with the headers; a 200 text/event-stream is read up to its first message or
 * comment and then closed (as a client going away), anything else is read to its end.
 */
export async function injectAnswer(app: FastifyInstance, req: InjectOptions, stream: boolean): Promise<Answer> {
  if (!stream) {
    const res = await app.inject(req);
    return { statusCode: res.statusCode, headers: res.headers, body: res.body, json: () => res.json() };
  }
  const res = await app.inject({ ...req, payloadAsStream: true });
  const body$ = res.stream() as Readable;
  let body = '';
  const open = res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/event-stream');
  for await (const chunk of body$) {
    body += String(chunk);
    if (open && body.includes('\n\n')) break;
  }
  if (open) (res.raw.res as ServerResponse).destroy();
  return { statusCode: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body) as unknown };
}
