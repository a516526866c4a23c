import type { FastifySerializerCompiler } from 'fastify';
import fastJson from 'fast-json-stringify';
import { z } from 'zod';

/**
 * Answers the service builds itself are serialized by fast-json-stringify (Fastify's own compiled
 * serializer), from the route's zod response schema turned into JSON Schema once. Nothing is
 * re-validated on the way out: the handlers shape every answer from the core's own state
 * (http/views.ts), and test/http/serializer.test.ts checks, on real answers of every route, that
 * the output is byte for byte what zod would have produced (fastify-type-provider-zod's
 * serializer: encode with the schema, then JSON.stringify).
 *
 * What zod's encode does that this must match, and how:
 * - `z.object` drops keys it does not declare and writes the rest in the schema's order; so does
 *   fast-json-stringify, given the schema's properties. Loose objects (`additionalProperties: {}`)
 *   and records write the other keys after them, in the value's order, with JSON.stringify.
 * - fast-json-stringify writes required properties before optional ones; `required` is cut to the
 *   properties before the first optional one, so every object keeps the schema's order.
 * - `null` beside one type becomes fast-json-stringify's `nullable` (a `=== null` test, where an
 *   `anyOf` would run a validator per value); a union of objects (an answer or a dry run's
 *   `DryRunReply`) stays `anyOf`, whose first matching branch is written, as zod's union does.
 * One difference is left: zod's copy of a loose object puts an undeclared key that looks like an
 *   array index ("0") first (JavaScript's own-key order); here it follows the declared ones. The
 *   only loose objects written, a dry run's effects, have named keys.
 * Problems (http/errors.ts) and idempotent replays (http/mutation.ts) bring their own serializer.
 *
 * Compiled on first use, once per schema: a route's problem answers never are, and start-up
 * pays nothing.
 */
export const responseSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => {
  const zodSchema = resolveSchema(schema);
  let compiled = cache.get(zodSchema);
  if (compiled) return compiled;
  let stringify: ((value: unknown) => string) | undefined;
  compiled = (value: unknown) => (stringify ??= compile(serializationSchema(zodSchema)))(value);
  cache.set(zodSchema, compiled);
  return compiled;
};

type Stringify = (value: unknown) => string;

/** The `unsafe` string format (see escapeFree) is known to the Ajv that checks a union's branches. */
const OPTIONS: fastJson.Options = { ajv: { formats: { unsafe: true } } };

/**
 * The serializer of one JSON schema, with a memo of frozen answers: an object the views made once
 * and froze, deeply (a group's wire form, the system summary's answer), never changes, so its text
 * is made once, the first time it is written, and kept as long as the object lives (a WeakMap). An
 * array of objects (`GET /v1/groups`) is written item by item, `[` + items joined by `,` + `]`,
 * exactly as fast-json-stringify writes it, so that its frozen items are found in the memo too.
 */
function compile(schema: JsonSchema): Stringify {
  const whole = frozenMemo(fastJson(schema as fastJson.AnySchema, OPTIONS) as Stringify);
  const items = schema.items as JsonSchema | undefined;
  if (schema.type !== 'array' || schema.nullable === true || items?.type !== 'object' || items.nullable === true || 'anyOf' in items) return whole;
  const item = frozenMemo(fastJson(items as fastJson.AnySchema, OPTIONS) as Stringify);
  return (value) => {
    if (!Array.isArray(value)) return whole(value);
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + item(value[i]);
    return out + ']';
  };
}

function frozenMemo(stringify: Stringify): Stringify {
  const memo = new WeakMap<object, string>();
  return (value) => {
    if (typeof value !== 'object' || value === null || !Object.isFrozen(value)) return stringify(value);
    let text = memo.get(value);
    if (text === undefined) memo.set(value, (text = flat(stringify(value))));
    return text;
  };
}

/**
 * The same text as one flat string. What fast-json-stringify returns is built by concatenation, a
 * rope of many small pieces in V8; a rope inside each answer that holds it would be walked piece by
 * piece every time the answer is measured and written (Buffer.byteLength was 7% of GET /v1/groups).
 * JSON.parse of the text's JSON string gives the text back exactly, as a flat string.
 */
function flat(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}

const cache = new WeakMap<z.ZodType, (value: unknown) => string>();

/** A route's response schema: a zod schema, or `{ properties: zod }` (fastify-type-provider-zod accepts both). */
function resolveSchema(schema: unknown): z.ZodType {
  if (schema instanceof z.ZodType) return schema;
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (properties instanceof z.ZodType) return properties;
  throw new Error(`a response schema must be a zod schema: ${JSON.stringify(schema)}`);
}

/** No ids or descriptions: every schema inline, as fast-json-stringify wants it. */
const NO_METADATA = z.registry<{ id?: string }>();

type JsonSchema = { [keyword: string]: unknown };

/** The JSON Schema of what zod's encode writes, shaped for fast-json-stringify (see above). */
export function serializationSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any', cycles: 'ref', reused: 'inline', metadata: NO_METADATA }) as JsonSchema;
  delete json.$schema;
  return lean(json) as JsonSchema;
}

/**
 * A pattern every match of which is letters and digits only, such as a u64's `^0x[0-9a-f]+$`:
 * anchored, literal letters and digits and classes of them (ranges within 0-9, a-z or A-Z), each
 * optionally repeated. A string matching it needs no JSON escaping, so fast-json-stringify writes it
 * as it is (`format: 'unsafe'`) instead of scanning it for characters to escape; the answers the
 * service builds itself always match their schemas (hex strings come from `hex()`).
 */
const ALNUM_ONLY = /^\^(?:(?:[A-Za-z0-9]|\[(?:[0-9]-[0-9]|[a-z]-[a-z]|[A-Z]-[A-Z]|[A-Za-z0-9])+\])(?:[+*?]|\{\d+(?:,\d*)?\})?)+\$$/;
const escapeFree = (pattern: unknown): boolean => typeof pattern === 'string' && ALNUM_ONLY.test(pattern);

const isNull = (s: unknown): boolean => typeof s === 'object' && s !== null && (s as JsonSchema).type === 'null' && Object.keys(s).length === 1;

function lean(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) return node.map(lean);
  const { anyOf, type, properties, required, additionalProperties, items, $defs, ...rest } = node as JsonSchema;
  let out: JsonSchema = { ...rest };
  if (Array.isArray(type)) {
    const others = type.filter((t) => t !== 'null');
    out.type = others.length === 1 ? others[0] : others;
    if (others.length < type.length) out.nullable = true;
  } else if (type !== undefined) out.type = type;
  if (out.type === 'string' && out.format === undefined && escapeFree(out.pattern)) out.format = 'unsafe';
  if (properties !== undefined) {
    const shaped = Object.fromEntries(Object.entries(properties as JsonSchema).map(([k, v]) => [k, lean(v)]));
    out.properties = shaped;
    const req = new Set((required as string[] | undefined) ?? []);
    const leading: string[] = [];
    for (const k of Object.keys(shaped)) {
      if (!req.has(k)) break;
      leading.push(k);
    }
    if (leading.length > 0) out.required = leading;
  }
  // `false` is what a z.object says (drop the rest), which fast-json-stringify does anyway; inside a
  // union it would also make a branch refuse a value zod's union accepts (zod strips, then matches).
  if (additionalProperties !== undefined && additionalProperties !== false) out.additionalProperties = lean(additionalProperties);
  if (items !== undefined) out.items = lean(items);
  if ($defs !== undefined) out.$defs = Object.fromEntries(Object.entries($defs as JsonSchema).map(([k, v]) => [k, lean(v)]));
  if (Array.isArray(anyOf)) {
    const branches = anyOf.map(lean);
    const others = branches.filter((b) => !isNull(b));
    if (others.length === 1 && others.length < branches.length && Object.keys(out).length === 0 && !('anyOf' in (others[0] as JsonSchema))) {
      out = { ...(others[0] as JsonSchema), nullable: true };
    } else out.anyOf = branches;
  }
  return out;
}
