import { describe, expect, it } from 'vitest';
import { codes, isError } from '@medvault/protocol';
import { silentLog } from '../log.js';
import { MemoryKv } from '../kv-memory.js';
import { Authenticator } from './authenticator.js';
import { checkLogin } from './login.js';
import { hasRole } from './roles.js';
import { SessionStore } from './sessions.js';
import { totpCode, totpStep } from './totp.js';
import { UserStore } from './user-store.js';

const PASSWORD = 'correct horse battery staple';
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

async function setup() {
  const now = { value: T0 };
  const clock = () => now.value;
  const users = new UserStore(new MemoryKv());
  const sessions = new SessionStore(clock, { idleMs: 15 * 60_000, maxMs: 8 * 3600_000 });
  const auth = new Authenticator({ users, sessions, clock, log: silentLog() });
  const alice = await users.add('alice', 'technician', PASSWORD, T0);
  const code = (at = now.value) => totpCode(alice.totpSecret, at);
  return { now, users, sessions, auth, alice, code };
}

const refusedWith = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return isError(err) ? err.code : `unexpected ${String(err)}`;
  }
  return 'accepted';
};

describe('login', () => {
  it('accepts the right password with the right TOTP code', async () => {
    const { auth, code } = await setup();
    const r = await auth.login('alice', PASSWORD, code());
    expect(r).toMatchObject({ user: 'alice', role: 'technician' });
    expect(r.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.session(r.token)).toMatchObject({ user: 'alice', role: 'technician' });
  });

  it('refuses a wrong TOTP code, a wrong password and an unknown user alike', async () => {
    const { auth, code, now } = await setup();
    const wrong = String((Number(code()) + 1) % 1_000_000).padStart(6, '0');
    expect(await refusedWith(auth.login('alice', PASSWORD, wrong))).toBe(codes.AUTH_FAILED);
    expect(await refusedWith(auth.login('alice', 'not the password!', code()))).toBe(codes.AUTH_FAILED);
    expect(await refusedWith(auth.login('mallory', PASSWORD, code()))).toBe(codes.AUTH_FAILED);
    // A code from two steps ago is outside the ±1 step window.
    expect(await refusedWith(auth.login('alice', PASSWORD, code(now.value - 60_000)))).toBe(codes.AUTH_FAILED);
  });

  it('refuses a TOTP code that was already used, even within its window', async () => {
    const { auth, code, now } = await setup();
    const c = code();
    await auth.login('alice', PASSWORD, c);
    now.value += 5_000;
    expect(await refusedWith(auth.login('alice', PASSWORD, c))).toBe(codes.AUTH_FAILED);
    // The previous step's code is older than the one used: also refused.
    expect(await refusedWith(auth.login('alice', PASSWORD, code(now.value - 30_000)))).toBe(codes.AUTH_FAILED);
    now.value += 30_000;
    expect(await refusedWith(auth.login('alice', PASSWORD, code()))).toBe('accepted');
  });

  it('locks the account after five failures in a row, then lets the person in again after the lock', async () => {
    const { auth, code, now, users } = await setup();
    for (let i = 0; i < 5; i++) expect(await refusedWith(auth.login('alice', 'wrong password!!', code()))).toBe(codes.AUTH_FAILED);
    expect((await users.get('alice'))!.user.lockedUntil).toBe(T0 + 15 * 60_000);
    expect(await refusedWith(auth.login('alice', PASSWORD, code()))).toBe(codes.AUTH_LOCKED);
    now.value += 15 * 60_000;
    expect(await refusedWith(auth.login('alice', PASSWORD, code()))).toBe('accepted');
    expect((await users.get('alice'))!.user).toMatchObject({ failures: 0 });
  });

  it('resets the failure count on success', () => {
    const u = { v: 1 as const, name: 'bob', role: 'viewer' as const, passwordHash: '$argon2id$x', totpSecret: 'A'.repeat(32), createdAt: 0, failures: 4 };
    const ok = checkLogin(u, { passwordOk: true, totpStep: 100 }, 1000);
    expect(ok).toMatchObject({ ok: true, user: { failures: 0, lastTotpStep: 100 } });
    const bad = checkLogin(u, { passwordOk: true, totpStep: undefined }, 1000);
    expect(bad).toMatchObject({ ok: false, user: { failures: 0, lockedUntil: 1000 + 15 * 60_000 } });
  });

  it('computes TOTP steps with a ±1 step window', () => {
    const secret = 'JBSWY3DPEHPK3PXP';
    const step = Math.floor(T0 / 30_000);
    expect(totpStep(secret, totpCode(secret, T0), T0)).toBe(step);
    expect(totpStep(secret, totpCode(secret, T0 - 30_000), T0)).toBe(step - 1);
    expect(totpStep(secret, totpCode(secret, T0 + 30_000), T0)).toBe(step + 1);
    expect(totpStep(secret, totpCode(secret, T0 + 60_000), T0)).toBeUndefined();
    expect(totpStep(secret, '12345a', T0)).toBeUndefined();
  });

  it('refuses a duplicate account name and short passwords', async () => {
    const { users } = await setup();
    expect(await refusedWith(users.add('alice', 'viewer', PASSWORD, T0))).toBe(codes.CONFLICT);
    expect(await refusedWith(users.add('bob', 'viewer', 'short', T0))).toBe(codes.CONFIG_INVALID);
    expect(await refusedWith(users.add('Bad Name', 'viewer', PASSWORD, T0))).toBe(codes.CONFIG_INVALID);
  });
});

describe('sessions', () => {
  it('log off automatically after the idle timeout, and are extended by use', async () => {
    const { auth, code, now } = await setup();
    const { token } = await auth.login('alice', PASSWORD, code());
    now.value += 14 * 60_000;
    expect(auth.session(token)).toBeDefined();
    now.value += 14 * 60_000;
    expect(auth.session(token)).toBeDefined();
    now.value += 15 * 60_000;
    expect(auth.session(token)).toBeUndefined();
  });

  it('end after the absolute maximum however busy, and on logout', async () => {
    const { auth, code, now } = await setup();
    const { token } = await auth.login('alice', PASSWORD, code());
    for (let i = 0; i < 8 * 6; i++) {
      now.value += 10 * 60_000;
      if (i < 8 * 6 - 1) expect(auth.session(token)).toBeDefined();
    }
    expect(auth.session(token)).toBeUndefined();
    now.value += 30_000;
    const again = await auth.login('alice', PASSWORD, code());
    auth.logout(again.token);
    expect(auth.session(again.token)).toBeUndefined();
  });
});

describe('roles', () => {
  it('order viewer < technician < admin', () => {
    expect(hasRole('viewer', 'technician')).toBe(false);
    expect(hasRole('technician', 'technician')).toBe(true);
    expect(hasRole('admin', 'technician')).toBe(true);
    expect(hasRole('technician', 'admin')).toBe(false);
  });
});
