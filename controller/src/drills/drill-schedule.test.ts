/**
 * Golden cases for the drill schedule (SOP 5.4): when a store is due (new site, quarterly boundary,
 * a failed last drill, clock jumps) and what the dashboard's outlook says; the scheduler issuing
 * through a real DrillBook, once per due store, retrying what failed.
 */
import { describe, expect, it } from 'vitest';
import { generateSigningKey, makeDrillOrder, type DrillResult } from '@medvault/protocol';
import { assessSite, defaultPolicy } from '../health/assess.js';
import { silentLog } from '../log.js';
import { DrillBook } from './drill-book.js';
import { DrillScheduler, drillHealthPolicy, drillOutlook, drillsConfigSchema, dueDrills, parseEvery } from './drill-schedule.js';

const D = 24 * 3600_000;
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const Q = parseEvery('quarterly')!;
const key = generateSigningKey();
const by = { kind: 'scheduler' as const, id: 'drill-schedule' };
const site = (firstSeenAt = T0, stores = ['records', 'ehr']) => ({ site: 'clinic-a', firstSeenAt, stores });

/** A book with a drill of `store` issued at `at` and, optionally, its result. */
function book(drills: Array<{ store: string; at: number; result?: 'passed' | 'failed' }> = []): DrillBook {
  const b = new DrillBook();
  for (const d of drills) {
    const o = makeDrillOrder({ site: 'clinic-a', store: d.store, snapshot: 'latest', sample: 1, sources: ['local'], requestedBy: by }, key, d.at);
    b.addOrder(o);
    if (d.result) b.addResult(result(o.id, d.store, d.at, d.result));
  }
  return b;
}
const result = (drillId: string, store: string, startedAt: number, r: 'passed' | 'failed'): DrillResult => ({
  type: 'mv.drill-result.v1', drillId, site: 'clinic-a', store, requestedBy: by, sample: 1, startedAt, endedAt: startedAt + 5000, result: r,
  targets: { rtoS: 3600, rpoS: 86400 }, met: { rto: r === 'passed', rpo: true }, runs: [],
});

describe('dueDrills golden cases', () => {
  const cases: Array<{ name: string; book: DrillBook; firstSeenAt?: number; now: number; due: string[] }> = [
    { name: 'new site: nothing due on day one', book: book(), now: T0 + D, due: [] },
    { name: 'new site: both stores due one interval after it was first seen', book: book(), now: T0 + Q, due: ['records', 'ehr'] },
    { name: 'quarterly boundary: 1 ms before is not due', book: book([{ store: 'records', at: T0, result: 'passed' }, { store: 'ehr', at: T0, result: 'passed' }]), now: T0 + Q - 1, due: [] },
    { name: 'quarterly boundary: exactly 91 days after the last drill is due', book: book([{ store: 'records', at: T0, result: 'passed' }, { store: 'ehr', at: T0 + D, result: 'passed' }]), now: T0 + Q, due: ['records'] },
    // a failed drill still counts as the last drill: no re-issue storm; the failure is alerted instead
    { name: 'failed last drill: the next one a full interval later', book: book([{ store: 'records', at: T0 + 10 * D, result: 'failed' }, { store: 'ehr', at: T0 + 10 * D, result: 'passed' }]), now: T0 + 10 * D + Q - 1, due: [] },
    { name: 'issued, never answered: counts as the last drill', book: book([{ store: 'records', at: T0 + 5 * D }, { store: 'ehr', at: T0 + 5 * D }]), now: T0 + 5 * D + Q - 1, due: [] },
    { name: 'clock jumped back before the last drill: nothing due', book: book([{ store: 'records', at: T0 + 50 * D, result: 'passed' }, { store: 'ehr', at: T0 + 50 * D, result: 'passed' }]), now: T0, due: [] },
    { name: 'clock jumped a year ahead: each store due once, not once per missed quarter', book: book([{ store: 'records', at: T0, result: 'passed' }, { store: 'ehr', at: T0, result: 'passed' }]), now: T0 + 365 * D, due: ['records', 'ehr'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(dueDrills([site(c.firstSeenAt)], c.book, Q, c.now).map((d) => d.store)).toEqual(c.due);
    });
  }

  it('parses every; the overdue threshold follows it (quarterly: 92 days, the old fixed rule)', () => {
    expect([parseEvery('quarterly'), parseEvery('monthly'), parseEvery('30d'), parseEvery('12h'), parseEvery('0d'), parseEvery('yearly')]).toEqual([91 * D, 30 * D, 30 * D, 12 * 3600_000, undefined, undefined]);
    expect(drillHealthPolicy(undefined).drillMaxMs).toBe(92 * D);
    expect(drillHealthPolicy(drillsConfigSchema.parse({ every: 'monthly' })).drillMaxMs).toBe(31 * D);
    expect(drillHealthPolicy(drillsConfigSchema.parse({ every: '12h' })).drillMaxMs).toBe(13.2 * 3600_000);
  });

  it('the health rule follows [drills] every: a drill 35 days ago is overdue monthly, not quarterly', () => {
    const facts = { site: 'clinic-a', firstSeenAt: T0 - 400 * D, agentAlerts: [], log: [], snapshots: [], verifications: [{ kind: 'drill' as const, at: T0 - 35 * D, ok: true }] };
    const codes = (p: typeof defaultPolicy) => assessSite(facts, T0, p).reasons.map((r) => r.code).filter((c) => c.includes('DRILL'));
    expect(codes(drillHealthPolicy(drillsConfigSchema.parse({})))).toEqual([]);
    const monthly = assessSite(facts, T0, drillHealthPolicy(drillsConfigSchema.parse({ every: 'monthly' })));
    expect(monthly.reasons.find((r) => r.code === 'MV_ALERT_DRILL_OVERDUE')?.message).toBe('the last verified restore or drill was 35 days ago (at most 31 days apart by the drill schedule)');
  });
});

describe('drill outlook (the dashboard)', () => {
  it('next drill and overdue per store: overdue only without a passed drill within the threshold', () => {
    const b = book([{ store: 'records', at: T0, result: 'failed' }, { store: 'ehr', at: T0, result: 'passed' }]);
    const at = (now: number) => drillOutlook([site(T0 - 200 * D)], b, Q, now).map((o) => [o.store, o.nextAt, o.overdue, o.lastPassedAt]);
    // records never passed and the site is 200 days old: overdue; ehr passed, ending 5 s after T0
    expect(at(T0 + D)).toEqual([['records', T0 + Q, true, undefined], ['ehr', T0 + Q, false, T0 + 5000]]);
    expect(at(T0 + 92 * D + 5000)).toEqual([['records', T0 + Q, true, undefined], ['ehr', T0 + Q, false, T0 + 5000]]);
    expect(at(T0 + 92 * D + 5001)).toEqual([['records', T0 + Q, true, undefined], ['ehr', T0 + Q, true, T0 + 5000]]);
    // a new site is not overdue before the threshold either
    expect(drillOutlook([site(T0)], new DrillBook(), Q, T0 + 92 * D).map((o) => o.overdue)).toEqual([false, false]);
    expect(drillOutlook([site(T0)], new DrillBook(), Q, T0 + 92 * D + 1).map((o) => o.overdue)).toEqual([true, true]);
  });
});

describe('DrillScheduler', () => {
  it('issues each due store once, retries what failed at the next tick, and again a full interval later', async () => {
    const now = { value: T0 + Q };
    const b = new DrillBook();
    const issued: string[] = [];
    let failEhr = true;
    const s = new DrillScheduler({
      config: drillsConfigSchema.parse({ sample: 0.5, sources: ['local'] }), clock: () => now.value, log: silentLog(), book: b,
      sites: () => [site()],
      issue: async (r) => {
        if (r.store === 'ehr' && failEhr) throw new Error('NATS down');
        expect(r).toMatchObject({ site: 'clinic-a', sample: 0.5, sources: ['local'] });
        b.addOrder(makeDrillOrder({ ...r, snapshot: 'latest', requestedBy: by }, key, now.value));
        issued.push(r.store);
      },
    });
    await s.tick();
    expect(issued).toEqual(['records']);
    await s.tick();
    expect(issued).toEqual(['records']);
    failEhr = false;
    now.value += 60_000;
    await s.tick();
    expect(issued).toEqual(['records', 'ehr']);
    expect(s.outlook().map((o) => o.nextAt)).toEqual([T0 + 2 * Q, T0 + 2 * Q + 60_000]);
    now.value = T0 + 2 * Q;
    await s.tick();
    expect(issued).toEqual(['records', 'ehr', 'records']);
    // the clock jumps back a month: nothing is issued twice
    now.value -= 30 * D;
    await s.tick();
    expect(issued).toHaveLength(3);
    expect(s.every).toBe('quarterly');
  });
});
