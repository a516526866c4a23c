import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import type { Secrets } from '../core/ports.js';

/**
 * Tokens are 256 random bits, so a plain SHA-256 is enough to store them: there is nothing to
 * brute-force that a slow password hash would protect (unlike a human-chosen password).
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Random bytes for ids, drawn from the system's generator a pool at a time (as Node's own
 * randomUUID does): one call into it per id cost more than the rest of making a context.
 */
const ID_BYTES = 6;
const pool = Buffer.alloc(ID_BYTES * 512);
let poolAt = pool.length;

function newId(prefix: string): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += ID_BYTES;
  return `${prefix}-${pool.toString('hex', poolAt - ID_BYTES, poolAt)}`;
}

export const nodeSecrets: Secrets = {
  newId,
  newToken: () => {
    const token = `ioasd_${randomBytes(32).toString('base64url')}`;
    return { token, hash: hashToken(token) };
  },
  hashToken,
};
