import type { AuditPort, AuditRecord } from '../core/ports.js';
import type { Db } from './database.js';

/** Codec of the `audit` table: `detail` is a JSON column. */
interface AuditRow {
  seq: number;
  at: string;
  actor: string | null;
  action: string;
  target: string;
  detail: string | null;
}

export const auditCodec = {
  fromRow: (r: AuditRow): AuditRecord => ({ ...r, detail: r.detail === null ? undefined : (JSON.parse(r.detail) as unknown) }),
  detailToColumn: (detail: unknown): string | null => (detail === undefined ? null : JSON.stringify(detail)),
};

/** {@link AuditPort} on the `audit` table. */
export function auditStore(db: Db): AuditPort {
  const insert = db.prepare('INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
  const list = db.prepare('SELECT seq, at, actor, action, target, detail FROM audit WHERE seq > ? ORDER BY seq LIMIT ?');
  return {
    audit: (e) => void insert.run(new Date().toISOString(), e.actor, e.action, e.target, auditCodec.detailToColumn(e.detail)),
    listAudit: (q) => (list.all(q.afterSeq ?? 0, q.limit) as AuditRow[]).map(auditCodec.fromRow),
  };
}
