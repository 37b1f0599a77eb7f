import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Join tokens in Docker's shape: `SWMTKN-1-<CA digest>-<secret>`. The digest lets a joining node
 * check that it talks to the right cluster; the secret proves it may join. Only a hash of the
 * secret is stored in the cluster state.
 */
export interface JoinToken {
  readonly caDigest: string;
  readonly secret: string;
}

export function newToken(caDigest: string): string {
  return `SWMTKN-1-${caDigest}-${randomBytes(16).toString('hex')}`;
}

export function parseToken(token: string): JoinToken | undefined {
  const m = /^SWMTKN-1-([0-9a-f]{64})-([0-9a-f]{32})$/.exec(token.trim());
  return m ? { caDigest: m[1] as string, secret: m[2] as string } : undefined;
}

export function secretHash(token: string): string {
  return createHash('sha256')
    .update(parseToken(token)?.secret ?? token)
    .digest('hex');
}

/** Constant-time comparison of a presented token against the stored hash. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(secretHash(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
