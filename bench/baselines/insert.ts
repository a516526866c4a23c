/**
 * Baseline (a) of the write figures: bare Fastify, one INSERT per request in its own transaction
 * (autocommit: one WAL fsync per request, synchronous=FULL), answered when it returns.
 */
import Fastify from 'fastify';
import { openBenchDb, Rows, serve, type MapRequest } from './common.js';

const db = openBenchDb();
const rows = new Rows(db);
const app = Fastify({ logger: false });
app.post('/rows', async (request, reply) => reply.code(201).send(rows.add(request.body as MapRequest)));
await serve(app, db);
