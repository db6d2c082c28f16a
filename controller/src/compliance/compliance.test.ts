import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BackupLog } from '@medvault/protocol';
import { proposeSnapshot } from '../incidents/incidents.js';
import { adherence, complianceReport, scheduleAdherence, type Evidence } from './compliance.js';

const DAY = 86_400_000;
const MON = Date.UTC(2025, 0, 6); // Monday 00:00 UTC
const run = (at: number, job: BackupLog['job'], result: BackupLog['result'] = 'ok', store = 'records'): BackupLog => ({
  type: 'mv.backup-log.v1', site: 'clinic-a', jobId: randomUUID(), job, store, actor: { kind: 'scheduler', id: 'cron' },
  startedAt: at, endedAt: at + 60_000, result, files: 1, bytes: 1, errors: [],
});

describe('schedule adherence', () => {
  const week = { site: 'clinic-a', store: 'records', timezone: 'UTC', from: MON, to: MON + 7 * DAY };
  it('counts each 02:00 occurrence kept by a successful run before the next one; a full counts as an incremental', () => {
    const log = [0, 1, 2, 4, 5].map((d) => run(MON + d * DAY + 2 * 3_600_000 + 5000, 'incremental'));
    log.push(run(MON + 3 * DAY + 9 * 3_600_000, 'incremental', 'failed')); // day 3: failed only
    log.push(run(MON + 6 * DAY + 2 * 3_600_000, 'full')); // Sunday's full
    log.push(run(MON + 3 * DAY + 2 * 3_600_000, 'incremental', 'ok', 'other')); // another store
    const inc = adherence(log, { ...week, kind: 'incremental', pattern: '0 2 * * *' });
    expect(inc).toMatchObject({ expected: 7, kept: 6, missed: [MON + 3 * DAY + 2 * 3_600_000] });
    const full = adherence(log, { ...week, kind: 'full', pattern: '0 2 * * 0' });
    expect(full).toMatchObject({ expected: 1, kept: 1, missed: [] });
    expect(adherence([], { ...week, kind: 'full', pattern: '0 2 * * 0' }).missed).toHaveLength(1);
  });

  it('counts expected runs only from when the site was first seen, not from a period start before it existed', () => {
    const enrolled = MON + 3 * DAY + 12 * 3_600_000; // Thursday noon
    const log = [4, 5].map((d) => run(MON + d * DAY + 2 * 3_600_000 + 5000, 'incremental'));
    log.push(run(MON + 6 * DAY + 2 * 3_600_000, 'full'));
    const [full, inc] = scheduleAdherence(log, [], [{ site: 'clinic-a', firstSeenAt: enrolled }], week);
    expect(inc).toMatchObject({ kind: 'incremental', expected: 3, kept: 3, missed: [] });
    expect(full).toMatchObject({ kind: 'full', expected: 1, kept: 1, missed: [] });
    // A site seen since before the period still owes every run of the period.
    const [, old] = scheduleAdherence(log, [], [{ site: 'clinic-a', firstSeenAt: MON - 30 * DAY }], week);
    expect(old).toMatchObject({ expected: 7, kept: 3 });
  });
});

describe('compliance report', () => {
  const base: Evidence = {
    period: { from: MON, to: MON + 7 * DAY }, generatedAt: MON + 8 * DAY, generatedBy: 'tess',
    log: [run(MON + 2 * 3_600_000, 'full')],
    adherence: [{ site: 'clinic-a', store: 'records', kind: 'full', schedule: '0 2 * * 0', expected: 1, kept: 1, missed: [] }],
    snapshots: [], transport: { servers: ['tls://nats:4222'], tls: true, https: true },
    users: [{ name: 'tess', role: 'technician', mfa: true }], reviews: [], drills: [], drillSource: 'drill book', incidents: [],
    audit: { entries: 10, ok: true },
  };
  const mark = (e: Evidence, p: string) => complianceReport(e).sections.find((s) => s.heading.startsWith(p))!.mark;
  it('marks each gap failing and the whole report with it', () => {
    const r = complianceReport(base);
    expect(r.mark).toBe('fail');
    expect(mark(base, 'SOP 5.1: weekly')).toBe('pass');
    expect(mark(base, 'SOP 5.1: off-site')).toBe('fail'); // no snapshot in the period
    expect(mark(base, 'SOP 5.4, HIPAA')).toBe('fail'); // no drill
    expect(mark(base, 'SOP 5.4: regular review')).toBe('fail');
    expect(mark({ ...base, transport: { ...base.transport, tls: false } }, 'SOP 5.1 / 5.3')).toBe('fail');
    expect(mark({ ...base, users: [...base.users, { name: 'old', role: 'admin', mfa: false }] }, 'SOP 5.3')).toBe('fail');
    expect(mark({ ...base, audit: { entries: 3, ok: false, problem: 'entry seq 2 edited' } }, 'HIPAA 164.312(b)')).toBe('fail');
    expect(mark({ ...base, adherence: [{ ...base.adherence[0]!, kept: 0, missed: [MON] }] }, 'SOP 5.1: weekly')).toBe('fail');
  });
  it('passes when every clause has its evidence', () => {
    const snap = { type: 'mv.snapshot.v1' as const, site: 'clinic-a', repo: 'aa'.repeat(16), id: 'ab'.repeat(32), store: 'records', job: 'full' as const, time: MON + 3 * DAY, files: 1, bytes: 1, needs: 2 };
    const good: Evidence = {
      ...base, snapshots: [{ site: 'clinic-a', snapshot: snap, needed: 2, receipted: 2 }],
      reviews: [{ by: 'tess', at: MON + 7 * DAY, from: MON, to: MON + 7 * DAY, note: 'ok', entries: 1, failed: 0 }],
      drills: [{ site: 'clinic-a', store: 'records', startedAt: MON + DAY, by: 'scheduler', ok: true, files: 5, rtoS: 12 }],
    };
    const r = complianceReport(good);
    expect(r.sections.filter((s) => s.mark === 'fail').map((s) => s.heading)).toEqual([]);
    expect(r.mark).toBe('pass');
    expect(mark({ ...good, snapshots: [{ ...good.snapshots[0]!, receipted: 1 }] }, 'SOP 5.1: off-site')).toBe('fail');
  });
});

describe('proposed snapshot of an incident', () => {
  const snap = (id: string, time: number, store = 'records') => ({ type: 'mv.snapshot.v1' as const, site: 'clinic-a', repo: 'aa'.repeat(16), id: id.repeat(64), store, job: 'incremental' as const, time, files: 1, bytes: 1, needs: 1 });
  const snaps = [snap('1', 100), snap('2', 200), snap('3', 300), snap('4', 250, 'ehr'), snap('5', 400)];
  it('after a ransomware alert: the last snapshot of the store before the suspicious one', () => {
    expect(proposeSnapshot(snaps, { site: 'clinic-a', stores: [], suspect: '3'.repeat(64) })).toMatchObject({ snapshot: '2'.repeat(64), store: 'records', time: 200 });
  });
  it('otherwise the newest snapshot of the scoped stores before the window', () => {
    expect(proposeSnapshot(snaps, { site: 'clinic-a', stores: ['records'], before: 350 })!.snapshot).toBe('3'.repeat(64));
    expect(proposeSnapshot(snaps, { site: 'clinic-a', stores: [], before: 260 })!.snapshot).toBe('4'.repeat(64));
    expect(proposeSnapshot(snaps, { site: 'clinic-a', stores: ['records'], before: 50 })).toBeUndefined();
  });
});
