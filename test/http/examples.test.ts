import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTEXT_PLACEHOLDER, EXAMPLES, PRINCIPAL_PLACEHOLDER, TRY_IT_ORDER } from '../../src/http/schemas/examples.js';
import type { InjectOptions } from 'fastify';
import { ADMIN_TOKEN, testApp } from '../helpers.js';
import { desktop } from '../fixtures/sysfs/hosts.js';
import { fixtureTrees } from '../fixtures/sysfs/temp.js';
import { readSysfsTopology } from '../../src/topology/sysfs.js';
import { exampleRequest, injectAnswer, isEventStream, isShapeRefusal, operationsOf, type OpenApiDoc, type Operation } from './openapi-doc.js';

/**
 * Every request example in the OpenAPI document works against the demo topology: it matches the
 * document's own schema, the service never refuses its shape, and run in the documented order
 * (only the random context and principal ids pasted in) every one of them succeeds.
 */

const setup = await testApp();
const doc = (await setup.app.inject({ url: '/openapi.json' })).json() as OpenApiDoc;
await setup.close();
const operations = operationsOf(doc);
const byId = new Map(operations.map((o) => [o.operationId, o]));

/** Operations an example alone cannot make succeed on a fresh server, and why (checked below). */
const REFUSED_ON_A_FRESH_SERVER: Record<string, string> = {
  // Need the id a createContext answered (random): the placeholder names no context.
  getContext: 'ENOENT', renewContext: 'ENOENT', deleteContext: 'ENOENT', createIoas: 'ENOENT', bindDevice: 'ENOENT',
  // Need the id a createPrincipal answered.
  deletePrincipal: 'ENOENT',
  // Need ioas 1, which the first createIoas makes.
  getIoas: 'ENOENT', deleteIoas: 'ENOENT', getIovaRanges: 'ENOENT', setAllowedRanges: 'ENOENT', listMappings: 'ENOENT',
  map: 'ENOENT', mapBatch: 'ENOENT', copy: 'ENOENT', unmap: 'ENOENT',
  // Need the device bound (bindDevice), or hwpts 2 and 3 (attachDevice, allocHwpt).
  attachDevice: 'EINVAL', detachDevice: 'EINVAL', unbindDevice: 'EINVAL', allocHwpt: 'ENOENT', getHwpt: 'ENOENT', deleteHwpt: 'ENOENT',
  // Needs the mdev addDevice plugs in.
  deleteDevice: 'ENOENT',
  // Group-first routes, under the default device-first policy.
  openGroup: 'EOPNOTSUPP', closeGroup: 'EOPNOTSUPP', setContainer: 'EOPNOTSUPP', unsetContainer: 'EOPNOTSUPP',
  openGroupDevice: 'EOPNOTSUPP', closeGroupDevice: 'EOPNOTSUPP',
  // Needs a server started with --sysfs: the demo inventory has no host to re-read.
  rescanTopology: 'EOPNOTSUPP',
};

const trees = fixtureTrees();
afterAll(() => trees.remove());

/** The request as the admin (Swagger UI's "Authorize" with the admin token). */
const withAdmin = (req: InjectOptions): InjectOptions => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${ADMIN_TOKEN}` } });

describe('request examples in the OpenAPI document', () => {
  it('every operation with a body or a path parameter has an example of it, and every example is for a real operation', () => {
    for (const op of operations) {
      if (op.body) expect(op.body.example, `${op.operationId} body`).toBeDefined();
      for (const p of op.parameters.filter((p) => p.in === 'path')) expect(p.example, `${op.operationId} ${p.name}`).toBeDefined();
    }
    for (const id of Object.keys(EXAMPLES)) expect(byId.has(id), id).toBe(true);
  });

  it("every example matches the document's own schema for it", () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    // The document's refs (in operations and between its components) point into the schema added here.
    const local = (schema: unknown) => JSON.parse(JSON.stringify(schema).replaceAll('#/components/schemas/', 'doc#/$defs/')) as object;
    ajv.addSchema({ $id: 'doc', $defs: local(doc.components.schemas) });
    const compile = (schema: unknown) => ajv.compile(local(schema));
    for (const op of operations) {
      if (op.body) {
        const validate = compile(op.body.schema);
        expect(validate(op.body.example), `${op.operationId} body: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
      for (const p of op.parameters) {
        if (p.example === undefined) continue;
        const validate = compile(p.schema);
        expect(validate(p.example), `${op.operationId} ${p.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
    }
  });

  it('run alone on a fresh server, no example is refused for its shape; the refusals are the listed ones', async () => {
    const refused: Record<string, string> = {};
    for (const op of operations) {
      const t = await testApp();
      try {
        const res = await injectAnswer(t.app, withAdmin(exampleRequest(op)), isEventStream(op));
        expect(res.statusCode, `${op.operationId}: ${res.body}`).toBeLessThan(500);
        if (res.statusCode >= 400) {
          const body = res.json() as { errno: string; problems?: { path: string }[] };
          expect(isShapeRefusal(res.statusCode, body), `${op.operationId}: ${res.body}`).toBe(false);
          refused[op.operationId] = body.errno;
        }
      } finally {
        await t.close();
      }
    }
    expect(refused).toEqual(REFUSED_ON_A_FRESH_SERVER);
  });

  it('in the documented order, with only the random ids pasted in, every example succeeds under both policies', async () => {
    const t = await testApp();
    try {
      const ids: Record<string, string> = {};
      const replace = (v: unknown) => (v === CONTEXT_PLACEHOLDER ? ids.context : v === PRINCIPAL_PLACEHOLDER ? ids.principal : v);
      const run = async (op: Operation) => {
        const res = await injectAnswer(t.app, withAdmin(exampleRequest(op, replace)), isEventStream(op));
        expect(res.statusCode, `${op.operationId}: ${res.body}`).toBeGreaterThanOrEqual(200);
        expect(res.statusCode, `${op.operationId}: ${res.body}`).toBeLessThan(300);
        if (op.operationId === 'createContext') ids.context = (res.json() as { id: string }).id;
        if (op.operationId === 'createPrincipal') ids.principal = (res.json() as { id: string }).id;
      };
      for (const id of TRY_IT_ORDER.deviceFirst) await run(byId.get(id)!);
      const toGroupFirst = await t.admin({ method: 'PUT', url: '/v1/system/policy', payload: { policy: 'group-first' } });
      expect(toGroupFirst.json()).toMatchObject({ policy: 'group-first', changed: true });
      for (const id of TRY_IT_ORDER.groupFirst) await run(byId.get(id)!);
      // Every operation is covered: in an order, or taking no example at all (lists, gets without ids).
      const ordered = new Set<string>([...TRY_IT_ORDER.deviceFirst, ...TRY_IT_ORDER.groupFirst, ...TRY_IT_ORDER.withHost]);
      for (const op of operations) if (!ordered.has(op.operationId)) expect(EXAMPLES[op.operationId], op.operationId).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('on a server started with --sysfs, the examples that need a host succeed', async () => {
    const tree = trees.fresh(desktop);
    const scan = () => readSysfsTopology(tree.sys, { proc: tree.proc });
    const t = await testApp({ topology: scan(), hostScan: scan });
    try {
      for (const id of TRY_IT_ORDER.withHost) {
        const res = await t.admin(exampleRequest(byId.get(id)!));
        expect(res.statusCode, `${id}: ${res.body}`).toBe(200);
      }
    } finally {
      await t.close();
    }
  });
});
