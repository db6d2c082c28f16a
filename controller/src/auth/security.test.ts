/**
 * People, second part: recovery codes, break-glass emergency access, and the audit entry that
 * every login attempt (good or bad) leaves. (Wrong/reused TOTP, lockout, session expiry and roles:
 * authenticator.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { codes, isError, verifyChain } from '@medvault/protocol';
import { MemoryAudit } from '../audit/trail.js';
import { MemoryKv } from '../kv-memory.js';
import { silentLog } from '../log.js';
import { Authenticator } from './authenticator.js';
import { SessionStore } from './sessions.js';
import { totpCode } from './totp.js';
import { UserStore } from './user-store.js';

const PASSWORD = 'correct horse battery staple';
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

async function setup(opts: { breakGlass?: boolean } = {}) {
  const now = { value: T0 };
  const clock = () => now.value;
  const users = new UserStore(new MemoryKv());
  const sessions = new SessionStore(clock, { idleMs: 15 * 60_000, maxMs: 8 * 3600_000 });
  const audit = new MemoryAudit(clock);
  const alerts: Array<{ code: string; severity: string; subject: string; message: string }> = [];
  const auth = new Authenticator({
    users, sessions, clock, log: silentLog(), audit, alert: async (a) => void alerts.push(a),
    breakGlass: { enabled: opts.breakGlass ?? true, sessionMs: 30 * 60_000 },
  });
  const alice = await users.add('alice', 'technician', PASSWORD, T0);
  const vic = await users.add('vic', 'viewer', PASSWORD, T0);
  return { now, users, sessions, auth, audit, alerts, alice, vic };
}

const outcome = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return isError(err) ? err.code : `unexpected ${String(err)}`;
  }
};

describe('recovery codes', () => {
  it('are ten, shown once, stored only as hashes', async () => {
    const { users, alice } = await setup();
    expect(alice.newRecoveryCodes).toHaveLength(10);
    expect(new Set(alice.newRecoveryCodes).size).toBe(10);
    const stored = (await users.get('alice'))!.user;
    expect(stored.recoveryCodes).toHaveLength(10);
    for (const c of alice.newRecoveryCodes) expect(JSON.stringify(stored)).not.toContain(c);
  });

  it('replace the TOTP code once each; a used or unknown code is a failed login', async () => {
    const { auth, alice, users } = await setup();
    const [c1, c2] = alice.newRecoveryCodes;
    const r = await auth.login('alice', PASSWORD, c1!);
    expect(r).toMatchObject({ user: 'alice', recoveryCodesLeft: 9 });
    expect(await outcome(auth.login('alice', PASSWORD, c1!))).toBe(codes.AUTH_FAILED);
    expect(await outcome(auth.login('alice', PASSWORD, 'aaaaa-aaaaa'))).toBe(codes.AUTH_FAILED);
    expect(await outcome(auth.login('alice', 'wrong password!!', c2!))).toBe(codes.AUTH_FAILED);
    expect(await outcome(auth.login('alice', PASSWORD, c2!.toUpperCase().replace('-', '')))).toBe('accepted');
    expect((await users.get('alice'))!.user.recoveryCodes).toHaveLength(8);
    const renewed = await users.renewRecoveryCodes('alice');
    expect(renewed).toHaveLength(10);
    expect(await outcome(auth.login('alice', PASSWORD, alice.newRecoveryCodes[5]!))).toBe(codes.AUTH_FAILED);
    expect(await outcome(auth.login('alice', PASSWORD, renewed[0]!))).toBe('accepted');
  });
});

describe('every login attempt is audited', () => {
  it('good and bad logins, unknown users and lockouts each leave an entry, in a valid chain', async () => {
    const { auth, audit, now, alice } = await setup();
    await auth.login('alice', PASSWORD, totpCode(alice.totpSecret, now.value), { ip: '10.0.0.7' });
    await outcome(auth.login('mallory', PASSWORD, '123456'));
    now.value += 30_000;
    for (let i = 0; i < 5; i++) await outcome(auth.login('alice', 'wrong password!!', totpCode(alice.totpSecret, now.value)));
    await outcome(auth.login('alice', PASSWORD, totpCode(alice.totpSecret, now.value)));
    const e = audit.entries;
    expect(e[0]).toMatchObject({ action: 'login', result: 'ok', actor: { kind: 'user', id: 'alice' }, detail: { ip: '10.0.0.7', factor: 'totp' } });
    expect(e[1]).toMatchObject({ action: 'login', result: 'refused', actor: { id: 'mallory' }, detail: { reason: 'unknown user' } });
    expect(e.filter((x) => x.action === 'login' && x.result === 'refused' && x.actor.id === 'alice')).toHaveLength(6);
    expect(e.some((x) => x.action === 'account.lock')).toBe(true);
    expect(e.at(-1)).toMatchObject({ action: 'login', result: 'refused', detail: { reason: 'account locked after repeated failed logins' } });
    expect(verifyChain(e, { site: null }).ok).toBe(true);
  });

  it('fails closed: a login that cannot be audited does not happen', async () => {
    const { users, sessions, alice, now } = await setup();
    const auth = new Authenticator({ users, sessions, clock: () => now.value, log: silentLog(), audit: { record: async () => { throw new Error('NATS down'); } } });
    await expect(auth.login('alice', PASSWORD, totpCode(alice.totpSecret, now.value))).rejects.toThrow(/NATS down/);
    expect(sessions.size).toBe(0);
  });
});

describe('break-glass emergency access', () => {
  it('gives a technician a short admin session, audited and alerted', async () => {
    const { auth, audit, alerts, alice, now } = await setup();
    const r = await auth.breakGlass('alice', PASSWORD, totpCode(alice.totpSecret, now.value), 'ransomware on the EHR server at night, no admin reachable');
    expect(r).toMatchObject({ role: 'admin', breakGlass: true, user: 'alice', expiresAt: T0 + 15 * 60_000, endsBy: T0 + 30 * 60_000 });
    expect(auth.session(r.token)).toMatchObject({ role: 'admin', breakGlass: true });
    expect(audit.entries.at(-1)).toMatchObject({ action: 'break-glass', result: 'ok', detail: { grants: 'admin', minutes: 30 } });
    expect(alerts).toEqual([expect.objectContaining({ code: 'MV_ALERT_BREAK_GLASS', severity: 'critical', subject: 'user:alice' })]);
    // Used every 10 minutes (never idle), it still ends after 30 minutes, not the normal 8 hours.
    for (let i = 0; i < 2; i++) {
      now.value += 10 * 60_000;
      expect(auth.session(r.token)).toBeDefined();
    }
    now.value += 10 * 60_000 + 1;
    expect(auth.session(r.token)).toBeUndefined();
  });

  it('is refused to viewers, to wrong codes (counted towards lockout) and when disabled, and each refusal is audited', async () => {
    const t = await setup();
    expect(await outcome(t.auth.breakGlass('vic', PASSWORD, totpCode(t.vic.totpSecret, t.now.value), 'I want to see everything'))).toBe(codes.AUTH_FORBIDDEN);
    expect(await outcome(t.auth.breakGlass('alice', PASSWORD, '000000', 'emergency, honestly'))).toBe(codes.AUTH_FAILED);
    expect((await t.users.get('alice'))!.user.failures).toBe(1);
    expect(t.alerts).toHaveLength(0);
    const off = await setup({ breakGlass: false });
    expect(await outcome(off.auth.breakGlass('alice', PASSWORD, totpCode(off.alice.totpSecret, off.now.value), 'emergency, honestly'))).toBe(codes.AUTH_FORBIDDEN);
    expect(off.audit.entries.at(-1)).toMatchObject({ action: 'break-glass', result: 'refused' });
    expect(t.audit.entries.filter((e) => e.action === 'break-glass' && e.result === 'refused')).toHaveLength(2);
  });
});
