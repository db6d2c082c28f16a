import { describe, expect, it } from 'vitest';
import { limitAt, parseClock, parseDays, throttle, type BandwidthWindow } from './throttle.js';
import { MemLink } from './mem-link.js';

const weekdays: BandwidthWindow[] = [{ days: parseDays('mon-fri')!, from: parseClock('07:00')!, to: parseClock('19:00')!, mbit: 5 }];

describe('bandwidth schedule', () => {
  it('parses days and clock times, refusing nonsense', () => {
    expect(parseDays('mon-fri')).toEqual([1, 2, 3, 4, 5]);
    expect(parseDays('fri-mon')).toEqual([0, 1, 5, 6]);
    expect(parseDays('sat,sun')).toEqual([0, 6]);
    expect(parseDays('funday')).toBeUndefined();
    expect(parseClock('19:30')).toBe(1170);
    expect(parseClock('25:00')).toBeUndefined();
  });
  it('limits weekdays 07:00-19:00 to 5 Mbit/s and leaves nights and weekends unlimited', () => {
    expect(limitAt(weekdays, Date.parse('2026-12-03T10:00:00Z'), 'UTC')).toBe(625_000); // Thursday
    expect(limitAt(weekdays, Date.parse('2026-12-03T20:00:00Z'), 'UTC')).toBeUndefined();
    expect(limitAt(weekdays, Date.parse('2026-12-05T10:00:00Z'), 'UTC')).toBeUndefined(); // Saturday
    expect(limitAt(weekdays, Date.parse('2026-12-03T06:30:00Z'), 'Europe/Berlin')).toBe(625_000); // 07:30 in Berlin
  });
});

describe('throttle', () => {
  it('keeps the published rate within the limit on a simulated clock', async () => {
    let t = Date.parse('2026-12-03T10:00:00Z');
    const link = new MemLink();
    const slow = throttle(link, { windows: [{ days: [0, 1, 2, 3, 4, 5, 6], from: 0, to: 1440, mbit: 8 }], timeZone: 'UTC', now: () => t, sleep: async (ms) => void (t += ms) });
    const start = t;
    for (let i = 0; i < 100; i++) await slow.publish('mv.v1.in.x', Buffer.alloc(100_000), { msgID: `m${i}` });
    const seconds = (t - start) / 1000;
    // 10 MB at 1 MB/s: about 10 s (the bucket starts empty), never faster.
    expect(seconds).toBeGreaterThanOrEqual(9.8);
    expect(seconds).toBeLessThan(10.5);
    expect(link.messages).toHaveLength(100);
  });
  it('does not wait when unlimited', async () => {
    let t = Date.parse('2026-12-03T22:00:00Z');
    const slow = throttle(new MemLink(), { windows: weekdays, timeZone: 'UTC', now: () => t, sleep: async (ms) => void (t += ms) });
    const start = t;
    for (let i = 0; i < 10; i++) await slow.publish('s', Buffer.alloc(1_000_000), { msgID: `m${i}` });
    expect(t).toBe(start);
  });
});
