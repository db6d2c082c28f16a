/**
 * Recovery codes: ten random single-use codes (`abcde-fghij`, 50 bits each) shown once at
 * enrolment, for when the authenticator app is lost. They replace the TOTP code, never the password.
 * Only SHA-256 digests are stored (the codes are random, so a fast hash is enough); a used code's
 * digest is removed from the account in the same compare-and-set that records the login.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const RECOVERY_CODE_RE = /^[a-z2-7]{5}-?[a-z2-7]{5}$/i;

function code(): string {
  const b = randomBytes(10);
  let s = '';
  for (let i = 0; i < 10; i++) s += ALPHABET[b[i]! & 31];
  return `${s.slice(0, 5)}-${s.slice(5)}`;
}

export function digestRecoveryCode(c: string): string {
  return createHash('sha256').update(`medvault-recovery:${c.toLowerCase().replace('-', '')}`).digest('hex');
}

export function newRecoveryCodes(n = 10): { plain: string[]; hashes: string[] } {
  const plain = Array.from({ length: n }, code);
  return { plain, hashes: plain.map(digestRecoveryCode) };
}

/** Index of the stored digest `c` matches (compared in constant time), or -1. */
export function matchRecoveryCode(hashes: readonly string[] | undefined, c: string): number {
  if (!hashes || !RECOVERY_CODE_RE.test(c)) return -1;
  const d = Buffer.from(digestRecoveryCode(c), 'hex');
  let found = -1;
  for (const [i, h] of hashes.entries()) if (timingSafeEqual(Buffer.from(h, 'hex'), d) && found === -1) found = i;
  return found;
}
