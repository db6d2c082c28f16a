/**
 * auth/: who may use the controller: accounts (argon2id password + mandatory TOTP), lockout after
 * repeated failures, roles, and in-memory bearer sessions with automatic logoff.
 *
 * `login` runs: rate limit (caller) → account lookup (unknown names cost the same time) → password
 * → TOTP step → `checkLogin` → compare-and-set of the account → new session. Clients are told only
 * "wrong user name, password or code" (or that the account is locked); the log gets the reason.
 */
import { MedvaultError, codes } from '@medvault/protocol';
import type { Log } from '../log.js';
import { checkLogin, defaultLoginPolicy, isLocked, type LoginPolicy } from './login.js';
import { verifyNothing, verifyPassword } from './password.js';
import type { Role } from './roles.js';
import type { Session, SessionStore } from './sessions.js';
import { totpStep } from './totp.js';
import type { UserStore } from './user-store.js';

export interface AuthenticatorDeps {
  users: Pick<UserStore, 'get' | 'save'>;
  sessions: SessionStore;
  clock: () => number;
  log: Log;
  policy?: LoginPolicy;
}

export interface LoginResult {
  token: string;
  expiresAt: number;
  role: Role;
  user: string;
}

const refused = () => new MedvaultError(codes.AUTH_FAILED, 'wrong user name, password or TOTP code');

export class Authenticator {
  constructor(private readonly d: AuthenticatorDeps) {}

  /** A new session, or MV_ERR_AUTH_FAILED / MV_ERR_AUTH_LOCKED. */
  async login(name: string, password: string, code: string): Promise<LoginResult> {
    const entry = await this.d.users.get(name);
    if (!entry) {
      await verifyNothing(password);
      this.d.log.warn({ user: name, reason: 'unknown user' }, 'login refused');
      throw refused();
    }
    const now = this.d.clock();
    const { user, revision } = entry;
    const passwordOk = isLocked(user, now) ? false : await verifyPassword(user.passwordHash, password);
    const verdict = checkLogin(user, { passwordOk, totpStep: totpStep(user.totpSecret, code, now) }, now, this.d.policy ?? defaultLoginPolicy);
    if (verdict.user !== user) {
      try {
        await this.d.users.save(verdict.user, revision);
      } catch (err) {
        // Someone else changed the account meanwhile (e.g. the same code used twice at once): refuse.
        this.d.log.warn({ user: name, err }, 'login refused: account changed during login');
        throw refused();
      }
    }
    if (!verdict.ok) {
      this.d.log.warn({ user: name, reason: verdict.reason }, 'login refused');
      if (verdict.code === codes.AUTH_LOCKED) {
        const min = Math.ceil((verdict.retryAfterMs ?? 0) / 60_000);
        throw new MedvaultError(codes.AUTH_LOCKED, `account locked after repeated failed logins; try again in ${min} min`);
      }
      if (verdict.user.lockedUntil !== undefined) this.d.sessions.revokeUser(name);
      throw refused();
    }
    const s = this.d.sessions.create(user.name, user.role);
    this.d.log.info({ user: name, role: user.role }, 'login');
    return { ...s, role: user.role, user: user.name };
  }

  /** The session of a bearer token, or undefined (unknown, expired or logged off). */
  session(token: string): (Session & { expiresAt: number }) | undefined {
    return this.d.sessions.use(token);
  }

  logout(token: string): void {
    this.d.sessions.revoke(token);
  }
}
