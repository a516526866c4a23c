import type { Principal } from '../core/model.js';
import type { PrincipalPort, StoredPrincipal } from '../core/ports.js';
import type { Db } from './database.js';
import type { Cache } from './cache.js';
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
 * {@link PrincipalPort} on the `principals` table. Principals are read on every request
 * (authentication, quotas) and written rarely: they are cached, and the cache is dropped on every
 * write and whenever a transaction fails, so it never holds a value the database does not.
 */
export function principalStore(db: Db): PrincipalPort & Cache {
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
  const byId = new Map<string, Principal | undefined>();
  const byToken = new Map<string, string | undefined>();
  const dropCache = (): void => {
    byId.clear();
    byToken.clear();
  };
  const get = (id: string): Principal | undefined => {
    if (byId.has(id)) return byId.get(id);
    const row = s.get.get(id) as PrincipalRow | undefined;
    const principal = row && principalCodec.fromRow(row);
    byId.set(id, principal);
    return principal;
  };
  return {
    dropCache,
    listPrincipals: () => (s.list.all() as PrincipalRow[]).map(principalCodec.fromRow),
    listTokenHashes: () => s.tokenHashes.all() as { id: string; tokenHash: string }[],
    getPrincipal: get,
    findPrincipalByTokenHash(hash) {
      if (!byToken.has(hash)) {
        const row = s.byToken.get(hash) as PrincipalRow | undefined;
        // Unknown tokens are not remembered: a stream of bad tokens must not grow the cache.
        if (!row) return undefined;
        byToken.set(hash, row.id);
      }
      return get(byToken.get(hash)!);
    },
    principalNameTaken: (name, exceptId) => s.nameTaken.get(name, exceptId ?? null) !== undefined,
    insertPrincipal(sp: StoredPrincipal) {
      dropCache();
      s.insert.run({ ...principalCodec.toRow(sp), token_hash: sp.tokenHash });
    },
    updatePrincipal(pr) {
      dropCache();
      const { created_at: _created, ...row } = principalCodec.toRow(pr);
      s.update.run(row);
    },
    setTokenHash(id, hash) {
      dropCache();
      s.setTokenHash.run(hash, id);
    },
    deletePrincipal(id) {
      dropCache();
      s.delete.run(id);
    },
    countAdmins: () => s.countAdmins.get() as number,
  };
}
