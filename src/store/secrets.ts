import { createHash, randomBytes } from 'node:crypto';
import type { Secrets } from '../core/ports.js';

/**
 * Tokens are 256 random bits, so a plain SHA-256 is enough to store them: there is nothing to
 * brute-force that a slow password hash would protect (unlike a human-chosen password).
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export const nodeSecrets: Secrets = {
  newId: (prefix) => `${prefix}-${randomBytes(6).toString('hex')}`,
  newToken: () => {
    const token = `ioasd_${randomBytes(32).toString('base64url')}`;
    return { token, hash: hashToken(token) };
  },
  hashToken,
};
