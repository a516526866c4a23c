import { readFileSync } from 'node:fs';

/**
 * The API as the OpenAPI document describes it, reduced to what a command line needs: each
 * operation's method, path, path and query parameters, whether it takes an Idempotency-Key and
 * ?dryRun=true, and the top-level fields of its JSON body. ioasctl builds its commands from this,
 * so a route added to the server is a command as soon as openapi/openapi.json is regenerated.
 */

/** The subset of JSON Schema ioasctl reads. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, RawOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

interface RawOperation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  parameters?: { in: string; name: string; required?: boolean; schema?: JsonSchema; description?: string }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, unknown>;
}

export interface Param {
  name: string;
  required: boolean;
  schema: JsonSchema;
  description: string | undefined;
}

export interface BodyField {
  name: string;
  /** Required in every alternative of the body schema. */
  required: boolean;
  schema: JsonSchema;
}

export interface Operation {
  operationId: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  tag: string;
  summary: string;
  pathParams: Param[];
  queryParams: Param[];
  /** Takes the Idempotency-Key header. */
  idempotent: boolean;
  /** Takes ?dryRun=true. */
  dryRun: boolean;
  /** The JSON body's top-level fields (the union over oneOf/anyOf alternatives), or null without a body. */
  body: { required: boolean; fields: BodyField[] } | null;
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

/** The OpenAPI document shipped with the package (the same file the server's test keeps equal to /openapi.json). */
export function bundledDocument(): OpenApiDocument {
  return JSON.parse(readFileSync(new URL('../../openapi/openapi.json', import.meta.url), 'utf8')) as OpenApiDocument;
}

/** Follows a local `$ref` (`#/components/schemas/X`). */
export function resolve(doc: OpenApiDocument, schema: JsonSchema | undefined): JsonSchema {
  let s = schema ?? {};
  for (let hops = 0; s.$ref !== undefined && hops < 16; hops++) {
    const name = s.$ref.replace(/^#\/components\/schemas\//, '');
    s = doc.components?.schemas?.[name] ?? {};
  }
  return s;
}

/** Top-level fields of a body schema: an object, or the union of the alternatives of oneOf/anyOf/allOf. */
function bodyFields(doc: OpenApiDocument, schema: JsonSchema): BodyField[] {
  const s = resolve(doc, schema);
  const alternatives = (s.oneOf ?? s.anyOf)?.map((a) => resolve(doc, a)).filter((a) => a.properties !== undefined);
  const objects = alternatives && alternatives.length > 0 ? alternatives : [s, ...(s.allOf ?? []).map((a) => resolve(doc, a))];
  const fields = new Map<string, BodyField>();
  for (const o of objects) {
    for (const [name, prop] of Object.entries(o.properties ?? {})) {
      if (!fields.has(name)) fields.set(name, { name, required: true, schema: resolve(doc, prop) });
    }
  }
  for (const f of fields.values()) {
    f.required = objects.every((o) => (o.required ?? []).includes(f.name));
  }
  return [...fields.values()];
}

/** Every operation of the document, in the document's order. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(methods)) {
      if (!METHODS.has(method) || raw.operationId === undefined) continue;
      const params = (raw.parameters ?? []).map((p) => ({ ...p, schema: resolve(doc, p.schema) }));
      const queryParams = params
        .filter((p) => p.in === 'query')
        .map((p) => ({ name: p.name, required: p.required === true, schema: p.schema, description: p.description ?? p.schema.description }));
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => {
        const p = params.find((x) => x.in === 'path' && x.name === m[1]);
        return { name: m[1]!, required: true, schema: p?.schema ?? { type: 'string' }, description: p?.description };
      });
      const json = raw.requestBody?.content?.['application/json']?.schema;
      out.push({
        operationId: raw.operationId,
        method: method.toUpperCase() as Operation['method'],
        path,
        tag: raw.tags?.[0] ?? path.split('/').filter(Boolean)[1] ?? 'api',
        summary: raw.summary ?? '',
        pathParams,
        queryParams: queryParams.filter((p) => p.name !== 'dryRun'),
        idempotent: params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key'),
        dryRun: queryParams.some((p) => p.name === 'dryRun'),
        body: json === undefined ? null : { required: raw.requestBody?.required === true, fields: bodyFields(doc, json).filter((f) => f.name !== 'dryRun') },
      });
    }
  }
  return out;
}

/** Whether a schema admits this JSON type (through anyOf/oneOf as well). */
export function admits(schema: JsonSchema, type: string): boolean {
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  if (types.includes(type)) return true;
  return [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])].some((s) => admits(s, type));
}
