import { describe, expect, it } from 'vitest';
import { RateMeter, throttledLink } from './throttle.js';
import { MemLink } from './mem-link.js';
import type { BandwidthWindow } from './schedule.js';

const always = (bytesPerS: number): BandwidthWindow[] => [{ days: [0, 1, 2, 3, 4, 5, 6], from: 0, to: 1440, bytesPerS }];
const office: BandwidthWindow[] = [{ days: [1, 2, 3, 4, 5], from: 7 * 60, to: 19 * 60, bytesPerS: 625_000 }];

/** A simulated clock: sleeping advances it. */
function clock(start: string) {
  const c = { t: Date.parse(start), now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

describe('throttledLink', () => {
  it('keeps the object part rate within the limit on a simulated clock', async () => {
    const c = clock('2026-12-03T10:00:00Z');
    const link = new MemLink();
    const slow = throttledLink(link, { windows: always(1_000_000), timeZone: 'UTC' }, c);
    const start = c.t;
    for (let i = 0; i < 100; i++) await slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(100_000), { msgID: `m${i}` });
    const seconds = (c.t - start) / 1000;
    // 10 MB at 1 MB/s: about 10 s (the bucket starts empty), never faster.
    expect(seconds).toBeGreaterThanOrEqual(9.8);
    expect(seconds).toBeLessThan(10.5);
    expect(link.messages).toHaveLength(100);
    expect(slow.meter.rate).toBeGreaterThan(950_000);
    expect(slow.meter.rate).toBeLessThan(1_050_000);
  });

  it('parts larger than a second of the limit still go, at the limit on average', async () => {
    const c = clock('2026-12-03T10:00:00Z');
    const slow = throttledLink(new MemLink(), { windows: always(500_000), timeZone: 'UTC' }, c);
    const start = c.t;
    for (let i = 0; i < 10; i++) await slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(1_000_000), { msgID: `m${i}` });
    expect((c.t - start) / 1000).toBeGreaterThanOrEqual(17.9); // 10 MB at 0.5 MB/s, the first after a full bucket
    expect((c.t - start) / 1000).toBeLessThan(19.5);
  });

  it('never holds back heartbeats, alerts or events, even while parts wait', async () => {
    const c = clock('2026-12-03T10:00:00Z');
    const link = new MemLink();
    const slow = throttledLink(link, { windows: always(1000), timeZone: 'UTC' }, { now: c.now, sleep: () => new Promise(() => {}) });
    void slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(50_000), { msgID: 'part' });
    await slow.publish('mv.v1.ev.x.heartbeat', Buffer.alloc(10_000), { msgID: 'hb' });
    await slow.publish('mv.v1.ev.x.alert', Buffer.alloc(10_000), { msgID: 'alert' });
    expect(link.messages.map((m) => m.subject)).toEqual(['mv.v1.ev.x.heartbeat', 'mv.v1.ev.x.alert']);
  });

  it('does not wait outside the windows and starts limiting when one opens', async () => {
    const c = clock('2026-12-03T18:59:50Z');
    const slow = throttledLink(new MemLink(), { windows: office, timeZone: 'UTC' }, c);
    expect(slow.limitNow()).toBe(625_000);
    c.t = Date.parse('2026-12-03T19:00:00Z');
    expect(slow.limitNow()).toBeUndefined();
    const start = c.t;
    for (let i = 0; i < 10; i++) await slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(1_000_000), { msgID: `m${i}` });
    expect(c.t).toBe(start);
  });

  it('keeps the order of parts and passes the link through (connected, follow, close)', async () => {
    const c = clock('2026-12-03T10:00:00Z');
    const link = new MemLink();
    const slow = throttledLink(link, { windows: always(200_000), timeZone: 'UTC' }, c);
    await Promise.all([0, 1, 2, 3, 4].map((i) => slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(150_000 - i * 20_000), { msgID: `m${i}` })));
    expect(link.messages.map((m) => m.data.byteLength)).toEqual([150_000, 130_000, 110_000, 90_000, 70_000]);
    expect(slow.connected).toBe(true);
    link.down = true;
    expect(slow.connected).toBe(false);
    await expect(slow.publish('mv.v1.in.x.r.pack.h', Buffer.alloc(10), { msgID: 'down' })).rejects.toThrow(/link down/);
  });
});

describe('RateMeter', () => {
  it('measures bytes per second over its window and forgets older samples', () => {
    let t = 0;
    const m = new RateMeter(() => t, 10_000);
    expect(m.rate).toBe(0);
    for (let i = 0; i <= 10; i++, t += 1000) m.add(1000);
    expect(m.rate).toBe(900); // samples 1 s … 10 s remain: 9,000 bytes after the first, over 10 s
    t += 20_000;
    expect(m.rate).toBe(0);
  });
});
