import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { applyPolicy, parseDuration, type PolicySnapshot, type RetentionPolicy } from './policy.js';

const H = 3_600_000;
const D = 24 * H;
const T0 = Date.UTC(2026, 0, 1, 0, 30);
const hash = (i: number | string) => createHash('sha256').update(String(i)).digest('hex');

/** n snapshots of one store, `step` apart, each the parent of the next. */
function series(n: number, step: number, start = T0, store = 'records'): PolicySnapshot[] {
  return Array.from({ length: n }, (_, i) => ({ hash: hash(`${store}${i}`), time: start + i * step, store, tags: [], ...(i > 0 ? { parent: hash(`${store}${i - 1}`) } : {}) }));
}
const kept = (snaps: PolicySnapshot[], p: RetentionPolicy) => applyPolicy(snaps, p).filter((d) => d.keep).map((d) => snaps.findIndex((s) => s.hash === d.hash)).sort((a, b) => a - b);

describe('applyPolicy', () => {
  it('keep-last, keep-daily, keep-weekly count snapshots and buckets that exist', () => {
    const s = series(30, 6 * H); // 4 a day for 7.5 days
    expect(kept(s, { last: 3 })).toEqual([27, 28, 29]);
    expect(kept(s, { daily: 3 })).toEqual([23, 27, 29]);
    expect(kept(s, { last: 2, daily: 2 })).toEqual([27, 28, 29]);
    expect(kept(s, { daily: 100 })).toEqual([3, 7, 11, 15, 19, 23, 27, 29]);
  });

  it('says why each snapshot is kept', () => {
    const s = series(5, D);
    const d = applyPolicy(s, { last: 1, daily: 2, withinMs: 3 * D });
    expect(d.map((x) => [x.keep, x.reasons])).toEqual([
      [true, ['last 1 of 1', 'daily 2026-01-05', 'within 3d of the newest snapshot']],
      [true, ['daily 2026-01-04', 'within 3d of the newest snapshot']],
      [true, ['within 3d of the newest snapshot']],
      [true, ['within 3d of the newest snapshot']],
      [false, []],
    ]);
  });

  it('never forgets a snapshot on legal hold, and keeps everything without rules', () => {
    const s = series(10, D);
    s[2]!.tags = ['legal-hold'];
    s[4]!.tags = ['case-17'];
    expect(kept(s, { last: 1 })).toEqual([2, 9]);
    expect(kept(s, { last: 1, holdTags: ['case-17'] })).toEqual([2, 4, 9]);
    expect(kept(s, {})).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keep-within is relative to the newest snapshot, never to the clock: the same answer years later', () => {
    const s = series(10, D);
    expect(kept(s, { withinMs: 2 * D })).toEqual([7, 8, 9]);
    // (there is no `now` argument at all: nothing can make a late run delete more)
  });

  it('a clock that jumped back does not make the newest backups look oldest', () => {
    const s = series(6, D);
    // the RTC reset: the last two backups carry times from 2001, but their parents say they are newest
    s[4]!.time = Date.UTC(2001, 0, 1);
    s[5]!.time = Date.UTC(2001, 0, 2);
    expect(kept(s, { last: 2 })).toEqual([4, 5]);
    // their effective time is their parent's (2026-01-04), so the daily rule sees one day for 3, 4, 5
    expect(kept(s, { last: 1, daily: 2 })).toEqual([2, 5]);
  });

  it('a clock that jumped forward deletes nothing that keep-last would keep', () => {
    const s = series(8, D);
    s[5]!.time += 3650 * D;
    const k = kept(s, { last: 4, withinMs: 2 * D });
    expect(k).toEqual(expect.arrayContaining([4, 5, 6, 7]));
  });

  it('applies the policy per store', () => {
    const s = [...series(3, D, T0, 'a'), ...series(3, D, T0, 'b')];
    expect(kept(s, { last: 1 })).toEqual([2, 5]);
  });

  it('matches the golden decisions for two years of daily backups', () => {
    const s = series(730, D);
    s[100]!.tags = ['legal-hold'];
    const policies: RetentionPolicy[] = [{ last: 7, daily: 14, weekly: 8, monthly: 12, yearly: 5 }, { hourly: 48, withinMs: 10 * D }, { weekly: 52 }];
    const got = policies.map((p) => ({ policy: p, kept: applyPolicy(s, p).filter((d) => d.keep).map((d) => `${new Date(d.time).toISOString().slice(0, 10)} ${d.reasons.join('; ')}`) }));
    const file = fileURLToPath(new URL('./testdata/policy-golden.json', import.meta.url));
    if (!existsSync(file) || process.env.UPDATE_GOLDEN) writeFileSync(file, `${JSON.stringify(got, null, 1)}\n`);
    expect(got).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    expect(got[0]!.kept.filter((k) => k.includes('legal hold'))).toEqual(['2026-04-11 legal hold (tag legal-hold)']);
  });

  it('parses durations', () => {
    expect(parseDuration('30d')).toBe(30 * D);
    expect(parseDuration('1y6m')).toBe(365 * D + 180 * D);
    expect(parseDuration('12h')).toBe(12 * H);
    expect(parseDuration('soon')).toBeUndefined();
  });
});
