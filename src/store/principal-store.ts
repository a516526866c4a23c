import type { Principal } from '../core/model.js';
import type { PrincipalPort, StoredPrincipal } from '../core/ports.js';
import type { Db } from './database.js';
import { decodeQuotas, encodeQuotas } from './values.js';

/** Codec of the `principals` table (the token hash travels apart from the principal). */
interface PrincipalRow {
  id: string;
  name: string;
  role: Principal['role'];
  clearances: string;
  quotas: string;
  created_at: string;
}

const PRINCIPAL_COLUMNS = 'id, name, role, clearances, quotas, created_at';

export const principalCodec = {
  toRow: (p: Principal): PrincipalRow => ({
    id: p.id,
    name: p.name,
    role: p.role,
    clearances: JSON.stringify(p.clearances),
    quotas: encodeQuotas(p.quotas),
    created_at: p.createdAt,
  }),
  fromRow: (r: PrincipalRow): Principal => ({
    id: r.id,
    name: r.name,
    role: r.role,
    clearances: JSON.parse(r.clearances) as string[],
    quotas: decodeQuotas(r.quotas),
    createdAt: r.created_at,
  }),
};

/**
 * {@link PrincipalPort} on the `principals` table. The core keeps the principals in memory
 * (core/principal-state.ts) and writes through to here; these reads serve the start-up load and the
 * self-check.
 */
export function principalStore(db: Db): PrincipalPort {
  const p = (sql: string) => db.prepare(sql);
  const s = {
    list: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals ORDER BY created_at, id`),
    tokenHashes: p('SELECT id, token_hash AS tokenHash FROM principals ORDER BY id'),
    get: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE id = ?`),
    byToken: p(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE token_hash = ?`),
    nameTaken: p('SELECT 1 FROM principals WHERE name = ? AND id IS NOT ?').pluck(),
    insert: p(`INSERT INTO principals (id, name, role, clearances, quotas, token_hash, created_at)
      VALUES (@id, @name, @role, @clearances, @quotas, @token_hash, @created_at)`),
    update: p('UPDATE principals SET name = @name, role = @role, clearances = @clearances, quotas = @quotas WHERE id = @id'),
    setTokenHash: p('UPDATE principals SET token_hash = ? WHERE id = ?'),
    delete: p('DELETE FROM principals WHERE id = ?'),
    countAdmins: p("SELECT count(*) FROM principals WHERE role = 'admin'").pluck(),
  };
  const get = (id: string): Principal | undefined => {
    const row = s.get.get(id) as PrincipalRow | undefined;
    return row && principalCodec.fromRow(row);
  };
  return {
    listPrincipals: () => (s.list.all() as PrincipalRow[]).map(principalCodec.fromRow),
    listTokenHashes: () => s.tokenHashes.all() as { id: string; tokenHash: string }[],
    getPrincipal: get,
    findPrincipalByTokenHash(hash) {
      const row = s.byToken.get(hash) as PrincipalRow | undefined;
      return row && principalCodec.fromRow(row);
    },
    principalNameTaken: (name, exceptId) => s.nameTaken.get(name, exceptId ?? null) !== undefined,
    insertPrincipal(sp: StoredPrincipal) {
      s.insert.run({ ...principalCodec.toRow(sp), token_hash: sp.tokenHash });
    },
    updatePrincipal(pr) {
      const { created_at: _created, ...row } = principalCodec.toRow(pr);
      s.update.run(row);
    },
    setTokenHash(id, hash) {
      s.setTokenHash.run(hash, id);
    },
    deletePrincipal(id) {
      s.delete.run(id);
    },
    countAdmins: () => s.countAdmins.get() as number,
  };
}
