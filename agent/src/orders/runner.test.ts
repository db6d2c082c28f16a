import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codes, generateSigningKey, makeOrder, type BackupLog, type OrderRequest, type OrderStatus } from '@medvault/protocol';
import { OrderLedger } from './ledger.js';
import { OrderRunner, type RestoreEngine } from './runner.js';
import type { AgentAuditInput } from '../audit/audit-log.js';
import type { AuditEntry } from '@medvault/protocol';

const site = 'clinic-a';
const now = Date.UTC(2026, 11, 3, 12);

function setup(overrides: { engine?: RestoreEngine } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mv-orders-'));
  const root = join(dir, 'restore');
  mkdirSync(root);
  const key = generateSigningKey();
  const statuses: OrderStatus[] = [];
  const logs: BackupLog[] = [];
  /** The spool id each status and log entry was queued under (undefined: a fresh one). */
  const ids: (string | undefined)[] = [];
  const calls: string[] = [];
  const engine: RestoreEngine = overrides.engine ?? {
    async restore(o) {
      calls.push(o.target);
      o.onProgress?.({ files: 1, bytes: 1, totalFiles: 2, totalBytes: 2 });
      return { snapshot: 'f'.repeat(64), files: 2, bytes: 2, verified: 2, failed: [] };
    },
  };
  const ledger = OrderLedger.open(join(dir, 'state'), undefined, now - 3_600_000);
  const runner = new OrderRunner({
    site, controllerKey: key.publicKey, ledger, engine: (s) => (s === 'offsite' ? undefined : engine), restoreRoots: [root],
    report: (s, id) => (statuses.push(s), ids.push(id)), log: (l, id) => (logs.push(l), ids.push(id)), now: () => now, progressEveryMs: 0,
  });
  const request: OrderRequest = { site, snapshot: 'latest', paths: [], target: join(root, 'out'), source: 'local', mode: 'new', requestedBy: { user: 'tech1', mfa: true } };
  return { dir, root, key, statuses, logs, ids, calls, runner, ledger, request };
}

/** A second runner of `t`'s key and restore root, on `ledger`, with no restore engine: what it reports (and under which spool ids) is kept. */
function runnerOn(t: ReturnType<typeof setup>, ledger: OrderLedger) {
  const statuses: OrderStatus[] = [];
  const logs: BackupLog[] = [];
  const ids: (string | undefined)[] = [];
  const runner = new OrderRunner({
    site, controllerKey: t.key.publicKey, ledger, engine: () => undefined, restoreRoots: [t.root],
    report: (s, id) => (statuses.push(s), ids.push(id)), log: (l, id) => (logs.push(l), ids.push(id)), now: () => now,
  });
  return { runner, statuses, logs, ids };
}

describe('OrderRunner', () => {
  it('runs a valid order once, reports progress and result, and logs the job with the person', async () => {
    const t = setup();
    const order = makeOrder(t.request, t.key, now);
    expect((await t.runner.handle(order, 7)).state).toBe('done');
    expect(t.statuses.map((s) => s.state)).toEqual(['accepted', 'running', 'done']);
    expect(t.logs[0]).toMatchObject({ job: 'restore', actor: { kind: 'user', id: 'tech1' }, result: 'ok', orderId: order.id });
    // The same message redelivered at the same sequence (a reconnect) is answered from the ledger; a copy is a replay.
    expect(await t.runner.handle(order, 7)).toMatchObject({ state: 'done', redelivered: true });
    expect(await t.runner.handle(order, 9)).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    expect(t.calls).toHaveLength(1);
  });

  it('refuses forged, altered, expired, replayed and other-site orders without touching a file, saying why', async () => {
    const t = setup();
    const cases: [unknown, string][] = [
      [makeOrder(t.request, generateSigningKey(), now), codes.SIGNATURE_INVALID],
      [{ ...makeOrder(t.request, t.key, now), target: '/etc' }, codes.SIGNATURE_INVALID],
      [makeOrder(t.request, t.key, now - 3600_000), codes.ORDER_EXPIRED],
      [makeOrder({ ...t.request, site: 'clinic-b' }, t.key, now), codes.ORDER_SITE],
      [makeOrder({ ...t.request, target: '/etc/cron.d' }, t.key, now), codes.ORDER_TARGET],
      [makeOrder({ ...t.request, source: 'offsite' }, t.key, now), codes.ORDER_TARGET],
      ['garbage', codes.MESSAGE_INVALID],
    ];
    for (const [order, code] of cases) {
      const v = await t.runner.handle(order, 1);
      expect(v.state, String(code)).toBe('refused');
      expect(v.code).toBe(code);
      expect(v.reason!.length).toBeGreaterThan(10);
    }
    expect(t.calls).toHaveLength(0);
    expect(t.statuses.filter((s) => s.state === 'refused').every((s) => s.reason!.message.length > 0)).toBe(true);
  });

  it('refuses a target that escapes the restore roots through a symlink', async () => {
    const t = setup();
    symlinkSync('/etc', join(t.root, 'evil'));
    const v = await t.runner.handle(makeOrder({ ...t.request, target: join(t.root, 'evil', 'x') }, t.key, now), 1);
    expect(v).toMatchObject({ state: 'refused', code: codes.ORDER_TARGET });
    expect(v.reason).toMatch(/outside the restore roots/);
  });

  it('an order that fails as a whole (no such snapshot or store) is logged and audited with the person who ordered it, not "unknown"', async () => {
    const t = setup();
    const audits: AgentAuditInput[] = [];
    const runner = new OrderRunner({
      site, controllerKey: t.key.publicKey, ledger: t.ledger, engine: () => ({ restore: async () => Promise.reject(new Error('no snapshot latest of store nostore')) }), restoreRoots: [t.root],
      report: () => undefined, log: (l) => void t.logs.push(l), now: () => now, audit: { record: (e) => (audits.push(e), {} as AuditEntry) },
    });
    expect((await runner.handle(makeOrder({ ...t.request, store: 'nostore' }, t.key, now), 1)).state).toBe('failed');
    expect(t.logs[0]).toMatchObject({ job: 'restore', store: 'nostore', actor: { kind: 'user', id: 'tech1' }, result: 'failed' });
    expect(audits.filter((a) => a.action === 'restore')).toEqual([expect.objectContaining({ actor: { kind: 'user', id: 'tech1' }, result: 'failed' })]);
  });

  it('reports a failed verification as failed, naming the files', async () => {
    const t = setup({ engine: { restore: async () => ({ snapshot: 'f'.repeat(64), files: 3, bytes: 3, verified: 2, failed: ['fhir/a.json'] }) } });
    expect((await t.runner.handle(makeOrder(t.request, t.key, now), 1)).state).toBe('failed');
    const last = t.statuses.at(-1)!;
    expect(last.state).toBe('failed');
    expect(last.reason!.message).toMatch(/fhir\/a.json/);
    expect(t.logs[0]!.result).toBe('failed');
  });

  it('reports the real reason when files were not restored (exists in the target, corrupt data), not just "verification"', async () => {
    const t = setup({
      engine: {
        restore: async () => ({
          snapshot: 'f'.repeat(64), files: 0, bytes: 0, verified: 0, failed: ['fhir/a.json'],
          errors: [{ path: 'fhir/a.json', code: codes.CONFIG_INVALID, message: 'fhir/a.json: exists in the target; not overwritten (mode new)' }],
        }),
      },
    });
    await t.runner.handle(makeOrder(t.request, t.key, now), 1);
    const last = t.statuses.at(-1)!;
    expect(last.reason!.message).toContain('exists in the target');
    expect(last.reason!.message).toContain('1 already exists in the target: order the restore into an empty folder, or with --overwrite: fhir/a.json');
    expect(last.reason!.code).toBe(codes.CONFIG_INVALID);
    expect(t.logs[0]!.errors[0]!.message).toContain('exists in the target');
  });

  it('after a crash mid-order, reports the interrupted order failed once at the next start, and answers its redelivery with that', async () => {
    const t = setup();
    const order = makeOrder(t.request, t.key, now);
    t.ledger.record(order.id, 5, now, { by: 'tech1' }); // accepted, then the agent died before finishing
    t.ledger.close();
    const ledger = OrderLedger.open(join(t.dir, 'state'), undefined, now - 3_600_000);
    const { runner, statuses, logs, ids } = runnerOn(t, ledger);
    expect(runner.recoverInterrupted()).toEqual([order.id]);
    expect(statuses.map((s) => [s.orderId, s.state])).toEqual([[order.id, 'failed']]);
    expect(statuses[0]!.reason!.message).toMatch(/stopped .* partial restore/);
    expect(logs).toMatchObject([{ job: 'restore', orderId: order.id, result: 'failed', actor: { kind: 'user', id: 'tech1' } }]);
    expect(ids).toEqual([`order.${order.id}.final`, `order.${order.id}.log`]);
    expect(ledger.outcomeOf(order.id)).toBe('failed');
    expect(runner.recoverInterrupted()).toEqual([]);
    expect(await runner.handle(order, 5)).toMatchObject({ state: 'failed', redelivered: true });
    expect(statuses).toHaveLength(1);
    ledger.close();
    const reopened = OrderLedger.open(join(t.dir, 'state'), undefined, now - 3_600_000);
    expect([reopened.unfinished(), reopened.unreported(), reopened.outcomeOf(order.id)]).toEqual([[], [], 'failed']);
  });

  it('after a crash between recording an outcome and reporting it, reports that outcome again under the same spool ids, not failed', async () => {
    const t = setup();
    const order = makeOrder(t.request, t.key, now);
    // The final status cannot be queued (the state disk fills up, or the agent is killed there).
    const broken = new OrderRunner({
      site, controllerKey: t.key.publicKey, ledger: t.ledger, engine: () => ({ restore: async () => ({ snapshot: 'f'.repeat(64), files: 1, bytes: 1, verified: 1, failed: [] }) }), restoreRoots: [t.root],
      report: (s) => { if (s.state === 'done') throw new Error('ENOSPC'); }, log: () => {}, now: () => now,
    });
    await expect(broken.handle(order, 5)).rejects.toThrow('ENOSPC');
    t.ledger.close();
    const ledger = OrderLedger.open(join(t.dir, 'state'), undefined, now - 3_600_000);
    expect(ledger.unreported().map((u) => [u.id, u.outcome.state])).toEqual([[order.id, 'done']]);
    const { runner, statuses, logs, ids } = runnerOn(t, ledger);
    expect(runner.recoverInterrupted()).toEqual([]);
    expect(statuses).toMatchObject([{ orderId: order.id, state: 'done', result: { files: 1, verified: 1 } }]);
    expect(logs).toMatchObject([{ orderId: order.id, result: 'ok' }]);
    expect(ids).toEqual([`order.${order.id}.final`, `order.${order.id}.log`]);
    expect(await runner.handle(order, 5)).toMatchObject({ state: 'done', redelivered: true });
    expect(runner.recoverInterrupted()).toEqual([]);
    expect(statuses).toHaveLength(1);
    ledger.close();
  });

  it('keeps the ledger across restarts', async () => {
    const t = setup();
    const order = makeOrder(t.request, t.key, now);
    await t.runner.handle(order, 3);
    t.ledger.close();
    expect(OrderLedger.open(join(t.dir, 'state'), undefined, now - 3_600_000).has(order.id)).toBe(true);
  });

  it('refuses an order issued before its ledger began (a replaced or reset appliance replaying the control stream)', async () => {
    const t = setup();
    const dir = join(t.dir, 'new-appliance');
    const ledger = OrderLedger.open(dir, undefined, now - 60_000); // the new appliance's first start
    const { runner, statuses } = runnerOn(t, ledger);
    const old = makeOrder(t.request, t.key, now - 120_000); // still within its lifetime
    const verdict = await runner.handle(old, 2);
    expect(verdict).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    expect(verdict.reason).toMatch(/before this appliance's order ledger began/);
    expect(statuses.at(-1)).toMatchObject({ orderId: old.id, state: 'refused' });
    ledger.close();
    // The begin time is durable: reopening with a later clock keeps the first one.
    expect(OrderLedger.open(dir, undefined, now + 1).since).toBe(now - 60_000);
  });
});
