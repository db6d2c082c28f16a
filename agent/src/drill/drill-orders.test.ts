/** Drill orders: checked like restore orders (forged, foreign, replayed refused), each run once, even after a restart. */
import { describe, expect, it } from 'vitest';
import { codes, generateSigningKey, makeDrillOrder, type DrillRequest } from '@medvault/protocol';
import { OrderLedger } from '../orders/ledger.js';
import { tempDir } from '../repo/testing.js';
import { DrillOrders } from './drill-orders.js';
import type { DrillPlan } from './drill-runner.js';

describe('drill orders', () => {
  it('runs a signed order once; refuses forged, foreign-site and replayed ones, and says why', async () => {
    const dir = await tempDir('mv-drill-orders-');
    const key = generateSigningKey();
    const runs: DrillPlan[] = [];
    const audit: { action: string; result: string }[] = [];
    const make = (ledger: OrderLedger) => new DrillOrders({
      site: 'clinic-a', controllerKey: key.publicKey, ledger, now: Date.now,
      runner: { run: async (p) => (runs.push(p), { result: 'passed' } as never) },
      audit: { record: (r) => (audit.push(r), {} as never) },
    });
    let ledger = OrderLedger.open(dir, 'drills.jsonl');
    const drills = make(ledger);
    const request: DrillRequest = { site: 'clinic-a', store: 'records', snapshot: 'latest', sample: 0.1, sources: ['local', 'offsite'], requestedBy: { kind: 'user', id: 'tech' } };
    const order = makeDrillOrder(request, key, Date.now());
    expect(await drills.handle(order, 7)).toEqual({ state: 'passed' });
    expect(runs).toEqual([{ id: order.id, store: 'records', snapshot: 'latest', sample: 0.1, sources: ['local', 'offsite'], requestedBy: { kind: 'user', id: 'tech' } }]);
    expect(await drills.handle(order, 7)).toEqual({ state: 'done' }); // redelivery at the same sequence
    expect(await drills.handle(order, 9)).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    expect(await drills.handle(makeDrillOrder(request, generateSigningKey(), Date.now()), 10)).toMatchObject({ state: 'refused', code: codes.SIGNATURE_INVALID });
    expect(await drills.handle(makeDrillOrder({ ...request, site: 'clinic-b' }, key, Date.now()), 11)).toMatchObject({ state: 'refused', code: codes.ORDER_SITE });
    expect(await drills.handle(makeDrillOrder(request, key, Date.now() - 3_600_000), 12)).toMatchObject({ state: 'refused', code: codes.ORDER_EXPIRED });
    expect(runs).toHaveLength(1);
    expect(audit.map((a) => `${a.action}:${a.result}`)).toEqual(['drill.accept:ok', 'drill.refuse:refused', 'drill.refuse:refused', 'drill.refuse:refused', 'drill.refuse:refused']);
    // after a restart the ledger still knows it; an order cut short is reported as interrupted once
    const cut = makeDrillOrder(request, key, Date.now());
    ledger.record(cut.id, 13, Date.now());
    ledger.close();
    ledger = OrderLedger.open(dir, 'drills.jsonl');
    const again = make(ledger);
    expect(again.recoverInterrupted()).toEqual([cut.id]);
    expect(again.recoverInterrupted()).toEqual([]);
    expect(await again.handle(order, 14)).toMatchObject({ state: 'refused', code: codes.ORDER_REPLAYED });
    ledger.close();
  });
});
