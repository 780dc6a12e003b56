import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefixes make a leaked secret recognisable (and greppable) at a glance. */
export const SECRET_PREFIX = { apiToken: 'dpa_', enrollmentToken: 'dpe_', hostCredential: 'dph_' } as const;

/** A fresh 256-bit secret, base64url, with a prefix naming its kind. */
export function generateSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** What is stored: SHA-256 of the secret, hex. A 256-bit random secret needs no slow hash. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function hashesEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
