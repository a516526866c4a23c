import type { PolicyName } from '../core/model.js';
import type { SystemPort } from '../core/ports.js';
import type { Db } from './database.js';
import type { Cache } from './cache.js';

/** {@link SystemPort} on the `settings` table: the policy in force, cached (read on every request). */
export function systemStore(db: Db): SystemPort & Cache {
  const get = db.prepare("SELECT value FROM settings WHERE key = 'policy'").pluck();
  const put = db.prepare("INSERT INTO settings (key, value) VALUES ('policy', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  let cached: { value: PolicyName | undefined } | null = null;
  return {
    dropCache: () => (cached = null),
    getPolicy() {
      if (!cached) cached = { value: get.get() as PolicyName | undefined };
      return cached.value;
    },
    setPolicy(policy) {
      cached = null;
      put.run(policy);
    },
  };
}
