/**
 * Baseline of the batch figure: bare Fastify inserting a request's rows (1,000) in one transaction,
 * with one prepared statement, and answering them all.
 */
import Fastify from 'fastify';
import { openBenchDb, Rows, serve, type MapRequest } from './common.js';

const db = openBenchDb();
const rows = new Rows(db);
const addAll = db.transaction((ms: MapRequest[]) => ms.map((m) => rows.add(m)));
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post('/batch', async (request, reply) => reply.code(201).send({ mappings: addAll((request.body as { mappings: MapRequest[] }).mappings) }));
await serve(app, db);
