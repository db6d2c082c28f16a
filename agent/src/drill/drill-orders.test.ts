/**
 * Drill orders: checked like restore orders (forged, foreign, replayed refused), each run once, even
 * after a restart; an expired or replayed one reaches the controller as a failed drill result.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codes, generateSigningKey, makeDrillOrder, validate, type DrillRequest, type DrillResult } from '@medvault/protocol';
import { OrderLedger } from '../orders/ledger.js';
import { tempDir } from '../repo/testing.js';
import { DrillOrders } from './drill-orders.js';
import { DrillRunner, type DrillPlan } from './drill-runner.js';

describe('drill orders', () => {
  it('runs a signed order once; refuses forged, foreign-site and replayed ones, and says why', async () => {
    const dir = await tempDir('mv-drill-orders-');
    const key = generateSigningKey();
    const runs: DrillPlan[] = [];
    const reported: DrillResult[] = [];
    const audit: { action: string; result: string }[] = [];
    // the real runner reports refusals; its runs are counted instead of restoring anything
    const runner = new DrillRunner({
      site: 'clinic-a', stores: [{ name: 'records', type: 'files', path: dir, schedule: { full: '0 2 * * 0', incremental: '0 2 * * *' }, continuous: false, rpo_s: 3600, rescan_s: 900, rto_s: 600 }],
      drillDir: dir, now: Date.now, open: async () => undefined, publish: (r, log) => (expect(log).toBeUndefined(), reported.push(validate(r, 'mv.drill-result.v1'))),
    });
    const passes = async (p: DrillPlan) => (runs.push(p), { result: 'passed' } as never);
    const make = (ledger: OrderLedger, run: (p: DrillPlan) => Promise<never> = passes) => new DrillOrders({
      site: 'clinic-a', controllerKey: key.publicKey, ledger, now: Date.now,
      runner: { run, notRun: (p, e, at) => runner.notRun(p, e, at), report: (r) => runner.report(r) },
      audit: { record: (r) => (audit.push(r), {} as never) },
    });
    let ledger = OrderLedger.open(dir, 'drills.jsonl');
    const drills = make(ledger);
    const request: DrillRequest = { site: 'clinic-a', store: 'records', snapshot: 'latest', sample: 0.1, sources: ['local', 'offsite'], requestedBy: { kind: 'user', id: 'tech' } };
    const order = makeDrillOrder(request, key, Date.now());
    expect(await drills.handle(order, 7)).toEqual({ state: 'passed' });
    expect(runs).toEqual([{ id: order.id, store: 'records', snapshot: 'latest', sample: 0.1, sources: ['local', 'offsite'], requestedBy: { kind: 'user', id: 'tech' } }]);
    expect(await drills.handle(order, 7)).toEqual({ state: 'passed', redelivered: true }); // redelivery at the same sequence: its recorded outcome
    expect(await drills.handle(order, 9)).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    expect(await drills.handle(makeDrillOrder(request, generateSigningKey(), Date.now()), 10)).toMatchObject({ state: 'refused', code: codes.SIGNATURE_INVALID });
    expect(await drills.handle(makeDrillOrder({ ...request, site: 'clinic-b' }, key, Date.now()), 11)).toMatchObject({ state: 'refused', code: codes.ORDER_SITE });
    const expired = makeDrillOrder(request, key, Date.now() - 3_600_000);
    expect(await drills.handle(expired, 12)).toMatchObject({ state: 'refused', code: codes.ORDER_EXPIRED });
    expect(runs).toHaveLength(1);
    // the replayed and the expired order reach the controller as failed drills; forged and foreign ones do not
    expect(reported.map((r) => [r.drillId, r.error?.code])).toEqual([[order.id, codes.ORDER_REPLAYED], [expired.id, codes.ORDER_EXPIRED]]);
    expect(reported[1]).toMatchObject({ site: 'clinic-a', store: 'records', result: 'failed', runs: [], sample: 0.1, requestedBy: { kind: 'user', id: 'tech' }, targets: { rtoS: 600, rpoS: 3600 }, met: { rto: false, rpo: false } });
    expect(reported[1]!.error!.message).toMatch(/^refused: order .* expired at/);
    expect(audit.map((a) => `${a.action}:${a.result}`)).toEqual(['drill.accept:ok', 'drill.refuse:refused', 'drill.refuse:refused', 'drill.refuse:refused', 'drill.refuse:refused']);
    // after a restart the ledger still knows it; a drill cut short (its run never ends: the agent
    // stopped) is recorded interrupted and reported failed with the reason, once
    const cut = makeDrillOrder(request, key, Date.now());
    void make(ledger, () => new Promise<never>(() => {})).handle(cut, 13);
    ledger.close();
    ledger = OrderLedger.open(dir, 'drills.jsonl');
    const again = make(ledger);
    expect(again.recoverInterrupted()).toEqual([cut.id]);
    expect(again.recoverInterrupted()).toEqual([]);
    expect(reported).toHaveLength(3);
    expect(reported[2]).toMatchObject({ drillId: cut.id, result: 'failed', store: 'records', sample: 0.1, requestedBy: { kind: 'user', id: 'tech' }, runs: [], error: { code: codes.STORAGE_FAILED } });
    expect(reported[2]!.error!.message).toBe(`drill ${cut.id}: the agent stopped (crash or power loss) while running it; order it again`);
    expect(await again.handle(cut, 13)).toEqual({ state: 'interrupted', redelivered: true });
    expect(await again.handle(order, 14)).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    ledger.close();
    // a stop after the outcome was recorded but before it was marked reported: reported again at the next start
    const lines = readFileSync(join(dir, 'drills.jsonl'), 'utf8').trimEnd().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ id: cut.id, reported: true });
    writeFileSync(join(dir, 'drills.jsonl'), `${lines.slice(0, -1).join('\n')}\n`);
    ledger = OrderLedger.open(dir, 'drills.jsonl');
    const before = reported.length;
    expect(make(ledger).recoverInterrupted()).toEqual([]);
    expect(reported.slice(before)).toEqual([reported[2]]);
    ledger.close();
  });
});
