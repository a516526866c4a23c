import type { ContextRecord } from '../core/model.js';
import type { ContextPort } from '../core/ports.js';
import type { Db } from './database.js';

/** Codec of the `contexts` table. */
interface ContextRow {
  id: string;
  principal_id: string;
  name: string | null;
  lease_seconds: number | null;
  expires_at: number | null;
  created_at: string;
}

export const contextCodec = {
  toRow: (c: ContextRecord): ContextRow => ({
    id: c.id,
    principal_id: c.principalId,
    name: c.name,
    lease_seconds: c.leaseSeconds,
    expires_at: c.expiresAt,
    created_at: c.createdAt,
  }),
  fromRow: (r: ContextRow): ContextRecord => ({
    id: r.id,
    principalId: r.principal_id,
    name: r.name,
    leaseSeconds: r.lease_seconds,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
  }),
};

/** {@link ContextPort} on the `contexts` table. */
export function contextStore(db: Db): ContextPort {
  const insert = db.prepare(`INSERT INTO contexts (id, principal_id, name, lease_seconds, expires_at, created_at)
    VALUES (@id, @principal_id, @name, @lease_seconds, @expires_at, @created_at)`);
  const setLease = db.prepare('UPDATE contexts SET lease_seconds = ?, expires_at = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM contexts WHERE id = ?');
  const list = db.prepare('SELECT id, principal_id, name, lease_seconds, expires_at, created_at FROM contexts');
  return {
    insertContext: (c) => void insert.run(contextCodec.toRow(c)),
    setContextLease: (id, leaseSeconds, expiresAt) => void setLease.run(leaseSeconds, expiresAt, id),
    deleteContext: (id) => void remove.run(id),
    listContexts: () => (list.all() as ContextRow[]).map(contextCodec.fromRow),
  };
}
