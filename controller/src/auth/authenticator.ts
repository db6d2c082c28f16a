/**
 * auth/: who may use the controller: accounts (argon2id password + mandatory second factor: TOTP or
 * a single-use recovery code), lockout after repeated failures, roles, in-memory bearer sessions
 * with automatic logoff, and break-glass emergency access (HIPAA 164.312(a)(2)(ii)).
 *
 * `login` runs: rate limit (caller) → account lookup (unknown names cost the same time) → password
 * → second factor → `checkLogin` → compare-and-set of the account → new session. Clients are told
 * only "wrong user name, password or code" (or that the account is locked); the log and the audit
 * trail get the reason. Every attempt, good or bad, is one audit entry; if it cannot be audited,
 * the login fails.
 *
 * `breakGlass` is a login (same checks, same lockout) by a technician or admin that yields a short
 * admin session marked `breakGlass`; it is audited and raises a critical alert, loudly.
 */
import { MedvaultError, codes } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Log } from '../log.js';
import { checkLogin, defaultLoginPolicy, isLocked, type LoginPolicy } from './login.js';
import { verifyNothing, verifyPassword } from './password.js';
import { RECOVERY_CODE_RE, matchRecoveryCode } from './recovery-codes.js';
import { hasRole, type Role } from './roles.js';
import type { Session, SessionStore } from './sessions.js';
import { totpStep } from './totp.js';
import type { UserStore } from './user-store.js';

export interface AuthenticatorDeps {
  users: Pick<UserStore, 'get' | 'save'>;
  sessions: SessionStore;
  clock: () => number;
  log: Log;
  policy?: LoginPolicy;
  audit?: AuditSink;
  /** Raises an alert (audited and logged); break-glass calls it. */
  alert?: (a: { code: string; severity: 'warning' | 'critical'; subject: string; message: string }) => Promise<void>;
  breakGlass?: { enabled: boolean; sessionMs: number };
}

export interface LoginResult {
  token: string;
  /** The idle logoff: each request moves it, up to `endsBy`. */
  expiresAt: number;
  /** The latest the session can last (break-glass: its configured minutes). */
  endsBy: number;
  role: Role;
  user: string;
  breakGlass?: boolean;
  /** Recovery codes left, when one was used. */
  recoveryCodesLeft?: number;
}

export interface LoginMeta {
  ip?: string;
}

const refused = () => new MedvaultError(codes.AUTH_FAILED, 'wrong user name, password or TOTP code');

export class Authenticator {
  constructor(private readonly d: AuthenticatorDeps) {}

  /** A new session, or MV_ERR_AUTH_FAILED / MV_ERR_AUTH_LOCKED. `code`: a TOTP code or a recovery code. */
  async login(name: string, password: string, code: string, meta: LoginMeta = {}): Promise<LoginResult> {
    return this.authenticate(name, password, code, meta, 'login');
  }

  /**
   * Break-glass: emergency admin access for a technician or admin who proves who they are exactly
   * as at login, giving a reason. The session is admin, lasts at most the configured minutes, and
   * every request in it is audited; the access itself is audited and alerted.
   */
  async breakGlass(name: string, password: string, code: string, reason: string, meta: LoginMeta = {}): Promise<LoginResult> {
    const bg = this.d.breakGlass ?? { enabled: false, sessionMs: 0 };
    if (!bg.enabled) {
      await this.audit({ actor: name, action: 'break-glass', result: 'refused', detail: { reason: 'break-glass is disabled in the configuration', ip: meta.ip ?? null } });
      throw new MedvaultError(codes.AUTH_FORBIDDEN, 'break-glass access is disabled on this controller');
    }
    return this.authenticate(name, password, code, meta, 'break-glass', reason);
  }

  private async audit(a: { actor: string; action: string; result: 'ok' | 'refused' | 'failed'; detail?: Record<string, string | number | boolean | null> }): Promise<void> {
    await this.d.audit?.record({ actor: { kind: 'user', id: a.actor.slice(0, 200) }, action: a.action, object: `user:${a.actor.slice(0, 200)}`, result: a.result, ...(a.detail ? { detail: a.detail } : {}) });
  }

  private async authenticate(name: string, password: string, code: string, meta: LoginMeta, action: 'login' | 'break-glass', reason?: string): Promise<LoginResult> {
    const ip = meta.ip ?? null;
    const entry = await this.d.users.get(name);
    if (!entry) {
      await verifyNothing(password);
      this.d.log.warn({ user: name, reason: 'unknown user' }, `${action} refused`);
      await this.audit({ actor: name, action, result: 'refused', detail: { reason: 'unknown user', ip } });
      throw refused();
    }
    const now = this.d.clock();
    const { user, revision } = entry;
    const recovery = !/^[0-9]{6}$/.test(code) && RECOVERY_CODE_RE.test(code);
    const passwordOk = isLocked(user, now) ? false : await verifyPassword(user.passwordHash, password);
    const recoveryIndex = recovery ? matchRecoveryCode(user.recoveryCodes, code) : -1;
    // A valid recovery code stands in for the TOTP step: one past the last, so replays still fail.
    const step = recovery ? (recoveryIndex >= 0 ? Math.max(user.lastTotpStep ?? 0, Math.floor(now / 30_000) - 2) + 1 : undefined) : totpStep(user.totpSecret, code, now);
    const verdict = checkLogin(user, { passwordOk, totpStep: step }, now, this.d.policy ?? defaultLoginPolicy);
    let next = verdict.user;
    if (verdict.ok && recovery) next = { ...next, recoveryCodes: user.recoveryCodes!.filter((_, i) => i !== recoveryIndex) };
    if (next !== user) {
      try {
        await this.d.users.save(next, revision);
      } catch (err) {
        // Someone else changed the account meanwhile (e.g. the same code used twice at once): refuse.
        this.d.log.warn({ user: name, err }, `${action} refused: account changed during login`);
        await this.audit({ actor: name, action, result: 'refused', detail: { reason: 'account changed during login (concurrent use of a code)', ip } });
        throw refused();
      }
    }
    const factor = recovery ? 'recovery-code' : 'totp';
    if (!verdict.ok) {
      this.d.log.warn({ user: name, reason: verdict.reason }, `${action} refused`);
      await this.audit({ actor: name, action, result: 'refused', detail: { reason: verdict.reason, factor, ip } });
      if (verdict.code === codes.AUTH_LOCKED) {
        const min = Math.ceil((verdict.retryAfterMs ?? 0) / 60_000);
        throw new MedvaultError(codes.AUTH_LOCKED, `account locked after repeated failed logins; try again in ${min} min`);
      }
      if (verdict.user.lockedUntil !== undefined) {
        this.d.sessions.revokeUser(name);
        await this.audit({ actor: name, action: 'account.lock', result: 'ok', detail: { until: verdict.user.lockedUntil, ip } });
      }
      throw refused();
    }
    const left = recovery ? (next.recoveryCodes?.length ?? 0) : undefined;
    if (action === 'break-glass') {
      if (!hasRole(user.role, 'technician')) {
        await this.audit({ actor: name, action, result: 'refused', detail: { reason: `role ${user.role} may not break the glass`, ip } });
        throw new MedvaultError(codes.AUTH_FORBIDDEN, 'break-glass access needs the technician or admin role');
      }
      await this.audit({ actor: name, action, result: 'ok', detail: { reason: reason ?? '', role: user.role, grants: 'admin', minutes: Math.round(this.d.breakGlass!.sessionMs / 60_000), factor, ip } });
      await this.d.alert?.({ code: 'MV_ALERT_BREAK_GLASS', severity: 'critical', subject: `user:${name}`, message: `${name} (${user.role}) used break-glass emergency access: ${reason ?? ''}`.slice(0, 2000) });
      const s = this.d.sessions.create(user.name, 'admin', { breakGlass: true, maxMs: this.d.breakGlass!.sessionMs });
      this.d.log.error({ user: name, reason, alert: 'MV_ALERT_BREAK_GLASS' }, 'BREAK-GLASS emergency access granted');
      return { ...s, role: 'admin', user: user.name, breakGlass: true, ...(left !== undefined ? { recoveryCodesLeft: left } : {}) };
    }
    await this.audit({ actor: name, action, result: 'ok', detail: { role: user.role, factor, ip, ...(left !== undefined ? { recoveryCodesLeft: left } : {}) } });
    const s = this.d.sessions.create(user.name, user.role);
    this.d.log.info({ user: name, role: user.role, factor }, 'login');
    return { ...s, role: user.role, user: user.name, ...(left !== undefined ? { recoveryCodesLeft: left } : {}) };
  }

  /** The session of a bearer token, or undefined (unknown, expired or logged off). */
  session(token: string): (Session & { expiresAt: number }) | undefined {
    return this.d.sessions.use(token);
  }

  logout(token: string): void {
    this.d.sessions.revoke(token);
  }
}
