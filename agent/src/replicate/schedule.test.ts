import { describe, expect, it } from 'vitest';
import { formatRate, limitAt, parseClock, parseDays, parseRate, type BandwidthWindow } from './schedule.js';

const office: BandwidthWindow[] = [{ days: parseDays('mon-fri')!, from: parseClock('07:00')!, to: parseClock('19:00')!, bytesPerS: parseRate('5Mbit')! }];

describe('bandwidth schedule: parsing', () => {
  it('parses days, clock times and rates, refusing nonsense', () => {
    expect(parseDays('mon-fri')).toEqual([1, 2, 3, 4, 5]);
    expect(parseDays('fri-mon')).toEqual([0, 1, 5, 6]);
    expect(parseDays('sat,sun')).toEqual([0, 6]);
    expect(parseDays('*')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const bad of ['funday', 'mon-tue-wed', '', 'mon,']) expect(parseDays(bad)).toBeUndefined();
    expect(parseClock('19:30')).toBe(1170);
    expect(parseClock('24:00')).toBe(1440);
    for (const bad of ['25:00', '24:01', '7', '07:60', '7am']) expect(parseClock(bad)).toBeUndefined();
    expect(parseRate('5Mbit')).toBe(625_000);
    expect(parseRate('500 kbit')).toBe(62_500);
    expect(parseRate('2MB/s')).toBe(2_000_000);
    expect(parseRate('1.5MiB')).toBe(1_572_864);
    expect(parseRate('unlimited')).toBeNull();
    expect(parseRate('64kbit')).toBe(8000);
    for (const bad of ['5', 'fast', '5 mbit', '1kbit', '63kbit', '-5Mbit']) expect(parseRate(bad)).toBeUndefined();
    expect(formatRate(625_000)).toBe('5 Mbit/s');
    expect(formatRate(62_500)).toBe('500 kbit/s');
  });
});

describe('bandwidth schedule: boundaries (golden cases)', () => {
  // [instant (UTC), time zone, expected bytes per second or undefined = unlimited, why]
  const golden: [string, string, number | undefined, string][] = [
    ['2026-12-03T10:00:00Z', 'UTC', 625_000, 'Thursday 10:00'],
    ['2026-12-03T06:59:59Z', 'UTC', undefined, 'one second before the window opens'],
    ['2026-12-03T07:00:00Z', 'UTC', 625_000, 'the window opens at 07:00 (inclusive)'],
    ['2026-12-03T18:59:59Z', 'UTC', 625_000, 'last second of the window'],
    ['2026-12-03T19:00:00Z', 'UTC', undefined, 'the window closes at 19:00 (exclusive)'],
    ['2026-12-05T10:00:00Z', 'UTC', undefined, 'Saturday'],
    ['2026-12-03T06:30:00Z', 'Europe/Berlin', 625_000, '07:30 in Berlin (CET, UTC+1)'],
    ['2026-12-03T18:30:00Z', 'Europe/Berlin', undefined, '19:30 in Berlin'],
    ['2026-12-04T23:30:00Z', 'Europe/Berlin', undefined, 'Friday 23:30 UTC is Saturday 00:30 in Berlin'],
    ['2026-12-06T23:30:00Z', 'Asia/Tokyo', 625_000, 'Sunday 23:30 UTC is Monday 08:30 in Tokyo'],
    // Spring forward: Berlin goes from CET (UTC+1) to CEST (UTC+2) on Sunday 2026-03-29 at 02:00.
    ['2026-03-27T05:30:00Z', 'Europe/Berlin', undefined, 'Friday before the change: 06:30 CET'],
    ['2026-03-27T06:00:00Z', 'Europe/Berlin', 625_000, 'Friday before the change: 07:00 CET'],
    ['2026-03-30T05:00:00Z', 'Europe/Berlin', 625_000, 'Monday after the change: 07:00 CEST'],
    ['2026-03-30T04:59:00Z', 'Europe/Berlin', undefined, 'Monday after the change: 06:59 CEST'],
    ['2026-03-30T17:00:00Z', 'Europe/Berlin', undefined, 'Monday after the change: 19:00 CEST'],
    // Fall back: CEST → CET on Sunday 2026-10-25 at 03:00; US Eastern on 2026-11-01.
    ['2026-10-23T05:00:00Z', 'Europe/Berlin', 625_000, 'Friday before: 07:00 CEST'],
    ['2026-10-26T05:00:00Z', 'Europe/Berlin', undefined, 'Monday after: 06:00 CET'],
    ['2026-10-26T06:00:00Z', 'Europe/Berlin', 625_000, 'Monday after: 07:00 CET'],
    ['2026-11-02T12:00:00Z', 'America/New_York', 625_000, 'Monday 07:00 EST'],
    ['2026-10-30T11:00:00Z', 'America/New_York', 625_000, 'Friday 07:00 EDT'],
    ['2026-10-30T10:59:00Z', 'America/New_York', undefined, 'Friday 06:59 EDT'],
  ];
  it.each(golden)('%s in %s → %s (%s)', (at, tz, expected) => {
    expect(limitAt(office, Date.parse(at), tz)).toBe(expected);
  });

  it('the night between the two DST Sundays: a window at the skipped and the repeated hour', () => {
    const night: BandwidthWindow[] = [{ days: [0], from: parseClock('02:00')!, to: parseClock('03:00')!, bytesPerS: 1000 }];
    // 2026-03-29 02:00-03:00 does not exist in Berlin: 00:59Z is 01:59 CET, 01:00Z is 03:00 CEST.
    expect(limitAt(night, Date.parse('2026-03-29T00:59:00Z'), 'Europe/Berlin')).toBeUndefined();
    expect(limitAt(night, Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toBeUndefined();
    // 2026-10-25 02:00-03:00 happens twice: 00:30Z (02:30 CEST) and 01:30Z (02:30 CET) both limited.
    expect(limitAt(night, Date.parse('2026-10-25T00:30:00Z'), 'Europe/Berlin')).toBe(1000);
    expect(limitAt(night, Date.parse('2026-10-25T01:30:00Z'), 'Europe/Berlin')).toBe(1000);
    expect(limitAt(night, Date.parse('2026-10-25T02:00:00Z'), 'Europe/Berlin')).toBeUndefined();
  });

  it('the first matching window wins: an unlimited lunch hour carved out of the office window', () => {
    const windows: BandwidthWindow[] = [{ days: [1, 2, 3, 4, 5], from: 12 * 60, to: 13 * 60 }, ...office];
    expect(limitAt(windows, Date.parse('2026-12-03T12:30:00Z'), 'UTC')).toBeUndefined();
    expect(limitAt(windows, Date.parse('2026-12-03T13:00:00Z'), 'UTC')).toBe(625_000);
    expect(limitAt([], Date.parse('2026-12-03T13:00:00Z'), 'UTC')).toBeUndefined();
  });
});
