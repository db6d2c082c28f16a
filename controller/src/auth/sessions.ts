/**
 * Login sessions: random 32-byte bearer tokens held in memory only (a controller restart logs
 * everyone off). A session ends after `idleMs` without a request (automatic logoff) and after
 * `maxMs` regardless. Only a SHA-256 of each token is kept.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Role } from './roles.js';

export interface Session {
  user: string;
  role: Role;
  createdAt: number;
  lastSeenAt: number;
  /** Emergency access (break-glass): elevated role, shorter life, every request audited. */
  breakGlass?: boolean;
  /** This session's own absolute limit, when shorter than the policy's. */
  maxMs?: number;
}

export interface SessionPolicy {
  idleMs: number;
  maxMs: number;
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

export class SessionStore {
  private readonly byDigest = new Map<string, Session>();

  constructor(
    private readonly clock: () => number,
    private readonly policy: SessionPolicy,
  ) {}

  /** A new session: `expiresAt` is its idle logoff (each use moves it), `endsBy` the latest it can last. */
  create(user: string, role: Role, opts: { breakGlass?: boolean; maxMs?: number } = {}): { token: string; expiresAt: number; endsBy: number } {
    const now = this.clock();
    const token = randomBytes(32).toString('base64url');
    const s: Session = { user, role, createdAt: now, lastSeenAt: now, ...(opts.breakGlass ? { breakGlass: true } : {}), ...(opts.maxMs !== undefined ? { maxMs: opts.maxMs } : {}) };
    this.byDigest.set(digest(token), s);
    this.sweep(now);
    return { token, expiresAt: this.expiresAt(s), endsBy: this.endsBy(s) };
  }

  /** The live session of `token`, extended by this use; undefined when unknown or expired. */
  use(token: string): (Session & { expiresAt: number }) | undefined {
    const now = this.clock();
    const key = digest(token);
    const s = this.byDigest.get(key);
    if (!s) return undefined;
    if (now >= this.expiresAt(s)) {
      this.byDigest.delete(key);
      return undefined;
    }
    s.lastSeenAt = now;
    return { ...s, expiresAt: this.expiresAt(s) };
  }

  revoke(token: string): void {
    this.byDigest.delete(digest(token));
  }

  /** Ends every session of `user` (e.g. when the account is locked or removed). */
  revokeUser(user: string): void {
    for (const [k, s] of this.byDigest) if (s.user === user) this.byDigest.delete(k);
  }

  get size(): number {
    return this.byDigest.size;
  }

  private expiresAt(s: Session): number {
    return Math.min(s.lastSeenAt + this.policy.idleMs, this.endsBy(s));
  }

  private endsBy(s: Session): number {
    return s.createdAt + Math.min(this.policy.maxMs, s.maxMs ?? Infinity);
  }

  private sweep(now: number): void {
    for (const [k, s] of this.byDigest) if (now >= this.expiresAt(s)) this.byDigest.delete(k);
  }
}
