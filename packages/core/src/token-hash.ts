import { createHash } from 'node:crypto';

/**
 * A short, stable fingerprint of a token for logs: the first 12 hex digits of its SHA-256.
 * Enough to tell tokens apart and to find one a user reports (`tsockify token verify` prints
 * it too), useless for replaying it. Logs never hold the token itself.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}
