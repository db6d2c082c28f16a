/**
 * The login decision, pure: given the stored account, whether the password verified, the TOTP step
 * the code matched (if any) and `now`, it says whether to let the person in and how the account
 * changes. Order of checks:
 *  1. a locked account is refused (MV_ERR_AUTH_LOCKED) and nothing changes;
 *  2. a wrong password, a wrong code or a code for a step already used counts a failure; the
 *     `maxFailures`-th failure in a row locks the account for `lockMs` (MV_ERR_AUTH_FAILED);
 *  3. otherwise the failures reset and the code's step is remembered, so it cannot be used again.
 */
import { codes, type ErrorCode } from '@medvault/protocol';
import type { UserRecord } from './user-record.js';

export interface LoginPolicy {
  maxFailures: number;
  lockMs: number;
}

export const defaultLoginPolicy: LoginPolicy = { maxFailures: 5, lockMs: 15 * 60_000 };

export type LoginVerdict =
  | { ok: true; user: UserRecord }
  | { ok: false; code: ErrorCode; reason: string; user: UserRecord; retryAfterMs?: number };

export function isLocked(user: UserRecord, now: number): boolean {
  return user.lockedUntil !== undefined && user.lockedUntil > now;
}

export function checkLogin(
  user: UserRecord,
  attempt: { passwordOk: boolean; totpStep: number | undefined },
  now: number,
  policy: LoginPolicy = defaultLoginPolicy,
): LoginVerdict {
  if (isLocked(user, now)) {
    return { ok: false, code: codes.AUTH_LOCKED, reason: 'account locked after repeated failed logins', user, retryAfterMs: user.lockedUntil! - now };
  }
  let reason: string | undefined;
  if (!attempt.passwordOk) reason = 'wrong password';
  else if (attempt.totpStep === undefined) reason = 'wrong TOTP code';
  else if (user.lastTotpStep !== undefined && attempt.totpStep <= user.lastTotpStep) reason = 'TOTP code already used';
  if (reason !== undefined) {
    const failures = user.failures + 1;
    if (failures >= policy.maxFailures) {
      const { lockedUntil: _l, ...rest } = user;
      return { ok: false, code: codes.AUTH_FAILED, reason: `${reason}; account locked`, user: { ...rest, failures: 0, lockedUntil: now + policy.lockMs } };
    }
    return { ok: false, code: codes.AUTH_FAILED, reason, user: { ...user, failures } };
  }
  const { lockedUntil: _l, ...rest } = user;
  return { ok: true, user: { ...rest, failures: 0, lastTotpStep: attempt.totpStep } };
}
