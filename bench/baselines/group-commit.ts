/**
 * Baseline (b) of the write figures: bare Fastify with group commit. The first request of an
 * event-loop turn opens a transaction (BEGIN); every request of that turn inserts its row in it; a
 * setImmediate (after the turn's I/O callbacks) COMMITs once, one fsync for all, and only then is each
 * request answered: the same durability as one commit per request.
 */
import Fastify from 'fastify';
import { openBenchDb, Rows, serve, type MapRequest } from './common.js';

const db = openBenchDb();
const rows = new Rows(db);
const begin = db.prepare('BEGIN');
const commit = db.prepare('COMMIT');
let waiting: (() => void)[] | null = null;

function flush(): void {
  const group = waiting!;
  waiting = null;
  commit.run();
  for (const answer of group) answer();
}

const app = Fastify({ logger: false });
app.post('/rows', async (request, reply) => {
  if (waiting === null) {
    begin.run();
    waiting = [];
    setImmediate(flush);
  }
  const row = rows.add(request.body as MapRequest);
  await new Promise<void>((resolve) => waiting!.push(resolve));
  return reply.code(201).send(row);
});
await serve(app, db);
