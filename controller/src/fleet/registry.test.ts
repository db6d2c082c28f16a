import { describe, expect, it } from 'vitest';
import { encode } from '@medvault/protocol';
import { FleetRegistry } from './registry.js';

const ev = (site: string, event: string, msg: unknown, time = 1000) => ({ subject: `mv.v1.ev.${site}.${event}`, data: encode(msg), time });
const hb = (site: string, sentAt: number) => ({
  type: 'mv.heartbeat.v1', site, sentAt, agentVersion: '1', uptimeS: 1, repos: [], backlog: { objects: 2, bytes: 30 },
});

describe('FleetRegistry', () => {
  it('keeps the newest heartbeat per site and drops invalid or misattributed events', () => {
    const f = new FleetRegistry();
    expect(f.apply(ev('clinic-a', 'heartbeat', hb('clinic-a', 20)))).toBeUndefined();
    expect(f.apply(ev('clinic-a', 'heartbeat', hb('clinic-a', 10)))).toBeUndefined();
    expect(f.site('clinic-a')!.heartbeat!.sentAt).toBe(20);
    expect(f.apply(ev('clinic-a', 'heartbeat', hb('clinic-b', 30)))).toMatch(/came from site clinic-a/);
    expect(f.apply(ev('clinic-a', 'heartbeat', { type: 'mv.heartbeat.v9' }))).toMatch(/unknown message type/);
    expect(f.apply(ev('clinic-a', 'log', hb('clinic-a', 30)))).toMatch(/expected mv.backup-log.v1/);
    expect(f.apply({ subject: 'mv.v1.ev.clinic-a.bogus', data: new Uint8Array(), time: 0 })).toMatch(/not an event subject/);
    expect(f.apply({ subject: 'mv.v1.ev.clinic-a.log', data: new Uint8Array([0xff]), time: 0 })).toMatch(/not UTF-8 JSON/);
    expect(f.sites().map((s) => s.site)).toEqual(['clinic-a']);
  });

  it('projects backup logs newest first and order statuses per order', () => {
    const f = new FleetRegistry();
    const log = (i: number) => ({
      type: 'mv.backup-log.v1', site: 'clinic-a', jobId: `00000000-0000-4000-8000-00000000000${i}`, job: 'full', store: 'records',
      actor: { kind: 'scheduler', id: 'cron' }, startedAt: i, endedAt: i + 1, result: 'ok', files: 1, bytes: 1, errors: [],
    });
    f.apply(ev('clinic-a', 'log', log(1)));
    f.apply(ev('clinic-a', 'log', log(2)));
    expect(f.log('clinic-a').map((l) => l.startedAt)).toEqual([2, 1]);
    expect(f.log('clinic-a', 1)).toHaveLength(1);
    const id = '11111111-1111-4111-8111-111111111111';
    f.apply(ev('clinic-a', 'status', { type: 'mv.order-status.v1', orderId: id, site: 'clinic-a', state: 'accepted', at: 5 }));
    expect(f.statuses(id)).toHaveLength(1);
  });
});
