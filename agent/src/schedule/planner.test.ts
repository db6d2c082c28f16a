import { describe, expect, it } from 'vitest';
import { dueJobs, nextWake, rpoTargetS, type StoreSchedule } from './planner.js';
import { cronProblem, nextOccurrence } from './cron.js';

const weekly: StoreSchedule = { store: 'records', full: '0 2 * * 0', incremental: '0 2 * * *', timezone: 'Europe/Berlin' };
const at = (iso: string) => Date.parse(iso);

describe('dueJobs (golden cases)', () => {
  const cases: [string, Record<string, { full?: number; incremental?: number }>, string, string | undefined][] = [
    ['never ran: a full at once', {}, '2026-12-03T12:00:00Z', 'full'],
    ['ran full Sunday, Monday 01:00 UTC (02:00 Berlin) passed: incremental', { records: { full: at('2026-11-29T01:00:00Z') } }, '2026-11-30T01:30:00Z', 'incremental'],
    ['same day, already ran incremental: nothing', { records: { full: at('2026-11-29T01:00:00Z'), incremental: at('2026-11-30T01:00:05Z') } }, '2026-11-30T20:00:00Z', undefined],
    ['off for three days (missed runs): one incremental at start-up', { records: { full: at('2026-11-29T01:00:00Z'), incremental: at('2026-11-30T01:00:00Z') } }, '2026-12-03T09:00:00Z', 'incremental'],
    ['off across Sunday: the missed full', { records: { full: at('2026-11-22T01:00:00Z'), incremental: at('2026-11-28T01:00:00Z') } }, '2026-11-30T09:00:00Z', 'full'],
    ['only incrementals ever: a full is due', { records: { incremental: at('2026-11-30T01:00:00Z') } }, '2026-11-30T02:00:00Z', 'full'],
    ['a clock jumped backwards: nothing extra', { records: { full: at('2026-11-29T01:00:00Z'), incremental: at('2026-11-30T01:00:00Z') } }, '2026-11-20T00:00:00Z', undefined],
  ];
  for (const [name, last, now, expected] of cases) {
    it(name, () => {
      const due = dueJobs([weekly], last, at(now), nextOccurrence);
      expect(due[0]?.job).toBe(expected);
      if (expected) expect(due[0]!.reason.length).toBeGreaterThan(3);
    });
  }

  it('wakes at the next occurrence, honouring the time zone', () => {
    expect(new Date(nextWake([weekly], at('2026-12-03T12:00:00Z'), nextOccurrence)!).toISOString()).toBe('2026-12-04T01:00:00.000Z');
  });

  it('names a bad expression', () => {
    expect(cronProblem('0 2 * *x *')).toBeDefined();
    expect(cronProblem('0 2 * * 0', 'Mars/Olympus')).toBeDefined();
    expect(cronProblem('0 2 * * 0', 'Europe/Berlin')).toBeUndefined();
  });
});

describe('rpoTargetS (the heartbeat\'s and the drills\' RPO target)', () => {
  const daily = { full: '0 2 * * 0', incremental: '0 2 * * *', timezone: 'UTC' };
  it('rpo_s when set; 60 s for a continuous store; else the longest scheduled gap plus two hours', () => {
    expect(rpoTargetS({ rpo_s: 600, schedule: daily }, nextOccurrence)).toBe(600);
    expect(rpoTargetS({ continuous: true, schedule: daily }, nextOccurrence)).toBe(60);
    expect(rpoTargetS({ continuous: false, schedule: daily }, nextOccurrence)).toBe(93_600);
    expect(rpoTargetS({ schedule: { full: '0 2 * * 0', incremental: '0 */6 * * *', timezone: 'UTC' } }, nextOccurrence)).toBe(6 * 3600 + 7200);
    expect(rpoTargetS({ schedule: { full: '0 2 * * 0', incremental: '0 2 * * 0', timezone: 'UTC' } }, nextOccurrence)).toBe(7 * 86_400 + 7200);
  });
});
