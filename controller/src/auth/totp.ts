/**
 * TOTP (RFC 6238) as every authenticator app does it: SHA-1, 6 digits, 30-second steps. A code is
 * accepted one step early or late (clock drift); `totpStep` says which step it matched so the
 * caller can refuse a code that was already used.
 */
import { Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_S = 30;
const ISSUER = 'medvault';

function totp(secret: string, user = 'user'): TOTP {
  return new TOTP({ issuer: ISSUER, label: user, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD_S, secret: Secret.fromBase32(secret) });
}

/** A new random 160-bit secret, base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app enrols from (shown as a QR code). */
export function totpUri(secret: string, user: string): string {
  return totp(secret, user).toString();
}

/** The code for `now` (ms): for scripts and tests. */
export function totpCode(secret: string, now: number): string {
  return totp(secret).generate({ timestamp: now });
}

/** The time step `code` matches within ±1 step of `now`, or undefined if it matches none. */
export function totpStep(secret: string, code: string, now: number): number | undefined {
  if (!/^[0-9]{6}$/.test(code)) return undefined;
  const delta = totp(secret).validate({ token: code, timestamp: now, window: 1 });
  if (delta === null) return undefined;
  return Math.floor(now / 1000 / TOTP_PERIOD_S) + delta;
}
