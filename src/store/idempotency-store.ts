import type { IdempotencyPort, IdempotencyRecord } from '../core/ports.js';
import type { Db } from './database.js';

/** Codec of the `idempotency` table. */
interface IdempotencyRow {
  principal_id: string;
  key: string;
  digest: string;
  status: number;
  body: string | null;
  created_at: number;
}

export const idempotencyCodec = {
  toRow: (r: IdempotencyRecord): IdempotencyRow => ({
    principal_id: r.principalId,
    key: r.key,
    digest: r.digest,
    status: r.status,
    body: r.body,
    created_at: r.createdAt,
  }),
  fromRow: (r: IdempotencyRow): IdempotencyRecord => ({
    principalId: r.principal_id,
    key: r.key,
    digest: r.digest,
    status: r.status,
    body: r.body,
    createdAt: r.created_at,
  }),
};

/** {@link IdempotencyPort} on the `idempotency` table. */
export function idempotencyStore(db: Db): IdempotencyPort {
  const get = db.prepare('SELECT principal_id, key, digest, status, body, created_at FROM idempotency WHERE principal_id = ? AND key = ?');
  const put = db.prepare(`INSERT INTO idempotency (principal_id, key, digest, status, body, created_at)
    VALUES (@principal_id, @key, @digest, @status, @body, @created_at)
    ON CONFLICT (principal_id, key) DO UPDATE SET digest = excluded.digest, status = excluded.status, body = excluded.body,
      created_at = excluded.created_at`);
  const expire = db.prepare('DELETE FROM idempotency WHERE created_at < ?');
  return {
    getIdempotency(principalId, key) {
      const row = get.get(principalId, key) as IdempotencyRow | undefined;
      return row && idempotencyCodec.fromRow(row);
    },
    putIdempotency: (r) => void put.run(idempotencyCodec.toRow(r)),
    expireIdempotency: (before) => expire.run(before).changes,
  };
}
