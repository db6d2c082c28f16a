/**
 * The HealthMonitor on a live registry with a fake clock: events re-assess at once, silence turns
 * a site offline, and the whole fleet falling silent is one controller-side alert instead of one
 * per site, after which every agent gets a fresh interval.
 */
import { describe, expect, it } from 'vitest';
import { subjects } from '@medvault/protocol';
import { AlertBook } from '../alerts/alert-book.js';
import { FleetRegistry } from '../fleet/registry.js';
import { OrderBook } from '../orders/order-book.js';
import { HealthMonitor, type SiteSummary } from './monitor.js';
import { simHeartbeat } from './sim.test-support.js';

const tick = () => new Promise((r) => setImmediate(r));

function setup() {
  const now = { value: Date.UTC(2026, 5, 1) };
  const fleet = new FleetRegistry();
  const alerts = new AlertBook();
  const monitor = new HealthMonitor({ fleet, book: new OrderBook(), alerts, clock: () => now.value, everyMs: 3_600_000 });
  const seen: SiteSummary[] = [];
  monitor.onChange((s) => seen.push(s));
  const beat = (site: string, c: Parameters<typeof simHeartbeat>[1] = 'ok') =>
    fleet.apply({ subject: subjects.event(site, 'heartbeat'), data: Buffer.from(JSON.stringify(simHeartbeat(site, c, now.value, { intervalS: 5 }))), time: now.value });
  monitor.start();
  return { now, fleet, alerts, monitor, seen, beat };
}

describe('HealthMonitor', () => {
  it('re-assesses on each event and tells listeners only about changes', async () => {
    const t = setup();
    expect(t.beat('a')).toBeUndefined();
    await tick();
    expect(t.seen.map((s) => [s.site, s.state])).toEqual([['a', 'ok']]);
    t.monitor.assessAll();
    expect(t.seen).toHaveLength(1);
    t.beat('a', 'failed-backup');
    await tick();
    expect(t.seen.at(-1)).toMatchObject({ site: 'a', state: 'critical', openAlerts: 1, headline: expect.stringContaining('failed') });
    t.monitor.stop();
  });

  it('one silent site is offline; a silent fleet is one controller alert, then a fresh interval', async () => {
    const t = setup();
    t.beat('a');
    t.beat('b');
    await tick();
    // b keeps beating, a stops: a goes offline after 3 × 5 s.
    for (let i = 0; i < 4; i++) {
      t.now.value += 5000;
      t.beat('b');
    }
    await tick();
    t.monitor.assessAll();
    expect(t.monitor.health('a')!.state).toBe('offline');
    expect(t.monitor.health('b')!.state).toBe('ok');
    expect(t.alerts.list({ state: 'open' }).map((a) => [a.site, a.code])).toEqual([['a', 'MV_ALERT_AGENT_OFFLINE']]);
    // Now nobody speaks for 16 s: one controller-side alert, b is not called offline.
    t.now.value += 16_000;
    t.monitor.assessAll();
    expect(t.monitor.health('b')!.state).toBe('ok');
    expect(t.alerts.list({ state: 'open' }).map((a) => [a.site, a.code]).sort()).toEqual([['_controller', 'MV_ALERT_NO_EVENTS'], ['a', 'MV_ALERT_AGENT_OFFLINE']].sort());
    // A minute of silence (assessed each second): still one alert, nobody newly offline.
    for (let i = 0; i < 60; i++) {
      t.now.value += 1000;
      t.monitor.assessAll();
    }
    expect(t.monitor.health('b')!.state).toBe('ok');
    expect(t.monitor.health('a')!.state).toBe('offline');
    // Events flow again: the controller alert resolves and b has a full interval from now.
    t.now.value += 1000;
    t.beat('a');
    await tick();
    t.monitor.assessAll();
    expect(t.alerts.list({ state: 'open' })).toEqual([]);
    t.now.value += 14_000;
    t.monitor.assessAll();
    expect(t.monitor.health('b')!.state).toBe('ok');
    t.now.value += 2_000;
    t.beat('a');
    await tick();
    t.monitor.assessAll();
    expect(t.monitor.health('b')!.state).toBe('offline');
    t.monitor.stop();
  });
});
