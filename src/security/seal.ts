import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Symmetric sealing for the cluster's secrets: AES-256-GCM, `iv(12) tag(16) ciphertext`, base64.
 * The cluster key seals the CA key and the current join token in the store, so that store access
 * alone yields neither.
 */
export function seal(key: Buffer, plain: string | Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** Opens a sealed value; throws when the key is wrong or the value was tampered with. */
export function unseal(key: Buffer, sealed: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 28) throw new Error('sealed value is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}

/** A 32-byte key derived from a secret for one purpose (HKDF-SHA256). */
export function deriveKey(secret: string, salt: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, purpose, 32));
}

/** A fresh cluster key. */
export function newClusterKey(): Buffer {
  return randomBytes(32);
}

/**
 * What a joining node sends instead of the token's secret: an HMAC, keyed by the secret, over
 * its id, a nonce and its certificate request. Whoever sees the request (plain HTTP is allowed on
 * the join path) learns neither the secret nor anything they could replay for another node or key.
 */
export function joinProof(secret: string, node: string, nonce: string, csr: string): string {
  return createHmac('sha256', deriveKey(secret, '', 'meshd join proof'))
    .update(`${node}\n${nonce}\n${csr}`)
    .digest('hex');
}

/** Constant-time comparison of two hex proofs. */
export function proofMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'hex');
  const b = Buffer.from(expected, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/** The key a join answer seals the cluster key under: only the holder of the secret opens it. */
export function joinAnswerKey(secret: string, nonce: string): Buffer {
  return deriveKey(secret, nonce, 'meshd cluster key for a joining node');
}
