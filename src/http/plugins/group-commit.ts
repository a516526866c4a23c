import type { FastifyInstance } from 'fastify';
import { CommitFailed } from '../../core/tx.js';
import { problem } from '../errors.js';

/**
 * Group commit (the core's Tx): the changes of one event-loop turn share one SQLite transaction and
 * one fsync, committed right after the turn (setImmediate). No answer leaves before the commit of the
 * state it was computed from: an answer given while a group is open waits for that group's commit,
 * so an acknowledged change is on disk exactly as with one commit per request (synchronous=FULL).
 * When the commit fails, every change of the group has been undone (database and memory) and each
 * waiting answer becomes 503 EIO: nothing of it was kept, and the client may retry.
 */
export function groupCommit(app: FastifyInstance): void {
  const { tx } = app.ioasd;
  // A callback hook, not an async one: most answers find no group open and pass straight through.
  app.addHook('onSend', (request, reply, payload, done) => {
    const group = tx.pending;
    if (!group) return done(null, payload);
    group.durable.then(
      () => done(null, payload),
      (err: unknown) => {
        if (!(err instanceof CommitFailed)) return done(err as Error);
        request.log.error({ err: err.cause }, 'commit failed: the group of changes was undone');
        const p = problem(request, 'EIO', err.message);
        for (const name of ['location', 'etag', 'idempotent-replayed']) reply.removeHeader(name);
        reply.code(p.status).header('content-type', 'application/problem+json').header('retry-after', '1');
        done(null, JSON.stringify(p));
      },
    );
  });
  tx.groupCommits((flush) => setImmediate(flush));
}
