/**
 * The controller's audit trail against a real nats-server: what is recorded, that the chain in
 * MV_AUDIT verifies, that MV_AUDIT refuses deletion and purge, and that an edited, inserted or
 * deleted entry — in the controller's chain, in a site's replicated chain, or in an export — is
 * detected by `audit verify` (readChain/readExport + verify, what the CLI runs).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { auditHash, chainEntry, encode, streams, subjects, type AuditEntry } from '@medvault/protocol';
import { totpCode } from '../auth/totp.js';
import { REPO, SITE, heartbeat, publishEvent, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';
import { SITE_AUDIT_STREAM } from '../bus.js';
import { readChain, readExport, verify } from './read.js';
import { restoreOutcome } from '../cli/restore-outcome.js';

const PASSWORD = 'correct horse battery staple';

describe('controller audit trail (real nats-server)', () => {
  let f: Fixture;
  let raw: NatsConnection;
  const secrets: Record<string, string> = {};

  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${f.app.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const login = async (user: string) => {
    f.now.value += 30_000;
    const r = await call('POST', '/api/v1/login', { user, password: PASSWORD, totp: totpCode(secrets[user]!, f.now.value) });
    expect(r.status).toBe(200);
    return r.body.token as string;
  };
  const order = { site: SITE, snapshot: 'latest', paths: ['fhir'], target: '/srv/records', mode: 'overwrite' };

  const hooks: string[] = [];
  let hookServer: Server;

  beforeAll(async () => {
    hookServer = createServer((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        hooks.push(b);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    f = await startFixture({ ingest: false, fourEyes: true, webhooks: [`http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`] });
    raw = await connect({ servers: f.server.url });
    for (const [name, role] of [['tess', 'technician'], ['tom', 'technician'], ['vic', 'viewer']] as const) {
      secrets[name] = (await f.app.users.add(name, role, PASSWORD, f.now.value)).totpSecret;
    }
    await publishEvent(f, SITE, 'heartbeat', heartbeat(SITE, f.now.value));
    await waitFor(() => f.app.fleet.hasSite(SITE), 5000, 'site known');
  });
  afterAll(async () => {
    await raw?.close();
    await f?.dispose();
    hookServer?.close();
  });

  it('four-eyes: an in-place overwrite waits for a second, different technician; the order names both', async () => {
    const tess = await login('tess');
    const created = await call('POST', '/api/v1/orders', order, tess);
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ state: 'awaiting-approval', final: false, requestedBy: 'tess' });
    const id = created.body.id as string;
    expect((await call('GET', `/api/v1/orders/${id}`, undefined, tess)).body.state).toBe('awaiting-approval');
    // Nothing is signed or sent yet.
    expect(await f.nats.bus.countSubject(streams.control.name, subjects.control(SITE, 'order'))).toBe(0);
    // Not by the requester, not by a viewer.
    expect((await call('POST', `/api/v1/orders/${id}/approve`, {}, tess)).status).toBe(403);
    expect((await call('POST', `/api/v1/orders/${id}/approve`, {}, await login('vic'))).status).toBe(403);
    const approved = await call('POST', `/api/v1/orders/${id}/approve`, {}, await login('tom'));
    expect(approved.status).toBe(200);
    expect(approved.body.order).toMatchObject({ id, requestedBy: { user: 'tess' }, approvedBy: { user: 'tom' }, mode: 'overwrite' });
    expect(await f.nats.bus.countSubject(streams.control.name, subjects.control(SITE, 'order'))).toBe(1);
    // A second approval does not make a second order.
    expect((await call('POST', `/api/v1/orders/${id}/approve`, {}, await login('tom'))).body.order.id).toBe(id);
    expect(await f.nats.bus.countSubject(streams.control.name, subjects.control(SITE, 'order'))).toBe(1);
    // 'new' mode needs no second person.
    expect((await call('POST', '/api/v1/orders', { ...order, mode: 'new' }, tess)).status).toBe(201);
    // A rejected request is final.
    const r2 = await call('POST', '/api/v1/orders', order, tess);
    const rejected = await call('POST', `/api/v1/orders/${r2.body.id}/reject`, { reason: 'wrong folder' }, await login('tom'));
    expect(rejected.body).toMatchObject({ state: 'rejected', final: true });
    // What the requester's `medvault restore` then reads and prints: who rejected it, why, exit 7.
    const seen = await call('GET', `/api/v1/orders/${r2.body.id}`, undefined, tess);
    expect(restoreOutcome(seen.body, false)).toEqual({ exit: 7, message: `order ${r2.body.id} rejected by tom: wrong folder (not run)` });
  });

  it('break-glass over HTTP: a loud admin session whose every request is audited', async () => {
    f.now.value += 30_000;
    const r = await call('POST', '/api/v1/break-glass', { user: 'tom', password: PASSWORD, totp: totpCode(secrets.tom!, f.now.value), reason: 'night emergency, admin unreachable' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ role: 'admin', breakGlass: true });
    // Loud: IT's webhook hears of it at once.
    const hook = await waitFor(() => hooks.find((h) => h.includes('MV_ALERT_BREAK_GLASS')), 5000, 'the break-glass webhook');
    expect(JSON.parse(hook)).toMatchObject({ event: 'opened', alert: { code: 'MV_ALERT_BREAK_GLASS', severity: 'critical' } });
    expect((await call('GET', '/api/v1/sites', undefined, r.body.token)).status).toBe(200);
    // In an emergency there may be nobody to approve: a break-glass session's overwrite goes straight out.
    const urgent = await call('POST', '/api/v1/orders', order, r.body.token);
    expect(urgent.status).toBe(201);
    expect(urgent.body.order).toMatchObject({ requestedBy: { user: 'tom' }, mode: 'overwrite' });
    expect((await call('POST', '/api/v1/break-glass', { user: 'tom', password: PASSWORD, totp: '000000', reason: 'x' })).status).toBe(400);
    expect((await call('POST', '/api/v1/break-glass', { user: 'tom', password: PASSWORD, totp: '000000', reason: 'emergency with a wrong code' })).status).toBe(401);
    expect((await call('POST', '/api/v1/login', { user: 'vic', password: 'not the password', totp: '000000' })).status).toBe(401);
  });

  it('records logins, orders (key use), approvals, break-glass and the alert in a chain that verifies', async () => {
    await waitFor(async () => (await readChain(f.nats.bus)).values.some((v) => (v as AuditEntry).action === 'break-glass.request'), 5000, 'audit entries');
    const c = await readChain(f.nats.bus);
    const entries = c.values as AuditEntry[];
    const actions = new Set(entries.map((e) => e.action));
    for (const a of ['controller.start', 'login', 'order.request', 'order.approve', 'order.issue', 'order.reject', 'break-glass', 'alert', 'break-glass.request']) expect(actions, a).toContain(a);
    expect(entries.find((e) => e.action === 'order.issue')!.detail).toMatchObject({ kid: f.key.kid, approvedBy: 'tom' });
    expect(entries.find((e) => e.action === 'order.issue' && e.detail?.breakGlass === true)).toBeDefined();
    expect(entries.find((e) => e.action === 'alert')!.detail).toMatchObject({ code: 'MV_ALERT_BREAK_GLASS', severity: 'critical' });
    expect(entries.filter((e) => e.action === 'login' && e.result === 'refused').length).toBeGreaterThan(0);
    expect(verify(c)).toMatchObject({ ok: true, chain: 'controller' });
  });

  it('MV_AUDIT refuses deletes and purges, and a restarted controller continues the same chain', async () => {
    const jsm = await jetstreamManager(raw);
    await expect(jsm.streams.deleteMessage(streams.audit.name, 1)).rejects.toThrow();
    await expect(jsm.streams.purge(streams.audit.name)).rejects.toThrow();
    const before = (await readChain(f.nats.bus)).values.length;
    await f.restart();
    const after = await readChain(f.nats.bus);
    expect(after.values.length).toBeGreaterThan(before);
    expect(verify(after).ok).toBe(true);
  });

  it("detects an entry inserted into the controller's live chain", async () => {
    const c = await readChain(f.nats.bus);
    const entries = c.values as AuditEntry[];
    // Someone with NATS access appends a well-formed entry that claims an earlier position.
    const forged = chainEntry(entries[1], { at: f.now.value, actor: { kind: 'user', id: 'mallory' }, action: 'login', object: 'user:mallory', result: 'ok' });
    await f.nats.bus.publish(subjects.controllerAudit(), encode(forged));
    const report = verify(await readChain(f.nats.bus));
    expect(report.ok).toBe(false);
    expect(report.problems[0]!.message).toMatch(/twice|follows|link/);
  });

  it('detects an edited, inserted or deleted entry in an export', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-audit-export-'));
    const entries: AuditEntry[] = [];
    for (let i = 0; i < 5; i++) entries.push(chainEntry(entries.at(-1), { at: i, actor: { kind: 'user', id: 'tess' }, action: 'login', object: 'user:tess', result: 'ok' }));
    const file = (name: string, es: unknown[]) => {
      const p = join(dir, name);
      writeFileSync(p, JSON.stringify({ chain: 'controller', entries: es }));
      return p;
    };
    expect(verify(readExport(file('ok.json', entries))).ok).toBe(true);
    const edited = entries.map((e, i) => (i === 2 ? { ...e, actor: { kind: 'user', id: 'someone-else' } } : e));
    expect(verify(readExport(file('edited.json', edited))).problems[0]).toMatchObject({ kind: 'edited', seq: 3 });
    const rehashed = entries.map((e, i) => (i === 2 ? { ...e, result: 'refused' as const, hash: auditHash({ ...e, result: 'refused' }) } : e));
    expect(verify(readExport(file('rehashed.json', rehashed))).ok).toBe(false);
    const inserted = [...entries.slice(0, 2), chainEntry(entries[1], { at: 9, actor: { kind: 'user', id: 'x' }, action: 'login', object: 'x', result: 'ok' }), ...entries.slice(2)];
    expect(verify(readExport(file('inserted.json', inserted))).ok).toBe(false);
    const deleted = entries.filter((_, i) => i !== 1);
    expect(verify(readExport(file('deleted.json', deleted))).problems[0]).toMatchObject({ kind: 'gap' });
    expect(verify(readExport(file('tail.json', entries.slice(0, 4))), { seq: 5, hash: entries[4]!.hash }).ok).toBe(false);
  });

  it("verifies a site's replicated chain, keeps it undeletable, and detects an edited, inserted or missing entry", async () => {
    const site = 'clinic-audit';
    const chain: AuditEntry[] = [];
    for (let i = 0; i < 6; i++) chain.push(chainEntry(chain.at(-1), { site, at: i, actor: { kind: 'agent', id: site }, action: 'order.accept', object: `order:${i}`, result: 'ok' }));
    // As the agent publishes them: message id by chain and seq; its heartbeat names the head.
    for (const e of chain) await f.nats.bus.publish(subjects.event(site, 'audit'), encode(e), { msgId: `${site}.ev.audit.${e.hash.slice(0, 16)}.${e.seq}` });
    const hb = (seq: number, hash: string) => publishEvent(f, site, 'heartbeat', { ...heartbeat(site, f.now.value), repos: [{ id: REPO, path: '/mnt/b', snapshots: 0 }], audit: { seq, hash } });
    await hb(6, chain[5]!.hash);
    const copied = (n: number) => waitFor(async () => (await readChain(f.nats.bus, site)).values.length >= n, 5000, `${n} entries in ${SITE_AUDIT_STREAM}`);
    await copied(6);
    expect(verify(await readChain(f.nats.bus, site))).toMatchObject({ ok: true, entries: 6, chain: site });

    // The server's copy outlives MV_EVENTS' retention and cannot be deleted or purged through the API;
    // deleting the original event changes nothing.
    const jsm = await jetstreamManager(raw);
    await expect(jsm.streams.deleteMessage(SITE_AUDIT_STREAM, 1)).rejects.toThrow();
    await expect(jsm.streams.purge(SITE_AUDIT_STREAM)).rejects.toThrow();
    const last = await jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.event(site, 'audit') });
    await jsm.streams.deleteMessage(streams.events.name, last!.seq);
    expect(verify(await readChain(f.nats.bus, site)).ok).toBe(true);
    // Missing at the end: the appliance says its chain is longer than what arrived.
    await hb(7, 'ee'.repeat(32));
    expect(verify(await readChain(f.nats.bus, site)).problems.map((p) => p.kind)).toContain('truncated');
    await hb(6, chain[5]!.hash);
    // Inserted: a forged entry, as a compromised appliance or a NATS admin could add it.
    await f.nats.bus.publish(subjects.event(site, 'audit'), encode(chainEntry(chain[4], { site, at: 99, actor: { kind: 'user', id: 'mallory' }, action: 'restore', object: 'x', result: 'ok' })));
    await copied(7);
    expect(verify(await readChain(f.nats.bus, site)).ok).toBe(false);
    // Edited: a copy of entry 3 with another object (re-sent after the duplicate window, or injected).
    await f.nats.bus.publish(subjects.event(site, 'audit'), encode({ ...chain[2]!, object: 'order:edited' }));
    await copied(8);
    const report = verify(await readChain(f.nats.bus, site));
    expect(report.problems.map((p) => p.kind)).toContain('edited');
    // Another site's entries in this site's chain are refused too.
    expect(verify({ chain: 'clinic-other', values: chain }).ok).toBe(false);
  });
});
