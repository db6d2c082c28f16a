/**
 * Golden cases for the health assessment and the automatic log review (SOP 5.4): each case is a
 * site's facts at a fixed `now` and the exact state and findings (code, severity) it must give.
 */
import { describe, expect, it } from 'vitest';
import type { Alert, BackupLog, Heartbeat } from '@medvault/protocol';
import { assessSite, catchUpText, verificationsOf, type SiteFacts } from './assess.js';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const S = 1000;
const H = 3600 * S;
const D = 24 * H;

type Store = NonNullable<Heartbeat['stores']>[number];
const store = (o: Partial<Store> = {}): Store => ({
  name: 'records', kind: 'files', continuous: true, rpoS: 60, lastFullAt: NOW - 2 * D, lastIncrementalAt: NOW - 3 * H,
  lastContinuousAt: NOW - 30 * S, lastSnapshotAt: NOW - 30 * S, lastJob: { job: 'continuous', result: 'ok', endedAt: NOW - 30 * S },
  watcher: { state: 'watching', since: NOW - 5 * D }, ...o,
});
const hb = (o: Partial<Heartbeat> = {}): Heartbeat => ({
  type: 'mv.heartbeat.v1', site: 'clinic-a', sentAt: NOW - 2 * S, agentVersion: '0.1.0', uptimeS: 3600, intervalS: 5,
  repos: [], backlog: { objects: 0, bytes: 0 },
  disks: [{ path: '/mnt/b1/medvault', ok: true, mount: '/mnt/b1', sizeBytes: 1e12, freeBytes: 5e11, smart: 'passed' }],
  stores: [store()], ...o,
});
const alert = (o: Partial<Alert>): Alert => ({ type: 'mv.alert.v1', site: 'clinic-a', code: 'X', severity: 'warning', key: 'k', state: 'open', message: 'm', at: NOW - H, ...o });
const log = (o: Partial<BackupLog>): BackupLog => ({
  type: 'mv.backup-log.v1', site: 'clinic-a', jobId: '00000000-0000-4000-8000-000000000001', job: 'check', store: 'records', actor: { kind: 'scheduler', id: 's' },
  startedAt: NOW - 2 * D, endedAt: NOW - 2 * D, result: 'ok', files: 0, bytes: 0, errors: [], ...o,
});
/** A healthy, long-established site: verified recently, drilled last month. */
const facts = (o: Partial<SiteFacts> = {}): SiteFacts => ({
  site: 'clinic-a', firstSeenAt: NOW - 400 * D, heartbeat: hb(), heartbeatAt: NOW - 2 * S, agentAlerts: [], log: [], snapshots: [],
  verifications: [{ kind: 'restore', at: NOW - 20 * D, ok: true, id: 'o1' }], ...o,
});

const cases: Array<{ name: string; facts: SiteFacts; now?: number; state: string; findings: string[] }> = [
  { name: 'healthy site', facts: facts(), state: 'ok', findings: [] },
  { name: 'new site, nothing verified yet: in grace', facts: facts({ firstSeenAt: NOW - H, verifications: [] }), state: 'ok', findings: [] },
  { name: 'agent stopped: offline after 3 missed heartbeats', facts: facts({ heartbeatAt: NOW - 16 * S }), state: 'offline', findings: ['MV_ALERT_AGENT_OFFLINE:critical'] },
  { name: 'a controller that just started gives agents their full interval', facts: facts({ heartbeatAt: NOW - H, heartbeat: hb({ sentAt: NOW - H }), listeningSince: NOW - 10 * S }), state: 'ok', findings: [] },
  { name: 'two missed heartbeats are not yet offline', facts: facts({ heartbeatAt: NOW - 14 * S }), state: 'ok', findings: [] },
  { name: 'slow heartbeat interval stretches the limit', facts: facts({ heartbeat: hb({ intervalS: 10 }), heartbeatAt: NOW - 25 * S }), state: 'ok', findings: [] },
  { name: 'events but never a heartbeat', facts: facts({ heartbeat: undefined, heartbeatAt: undefined }), state: 'offline', findings: ['MV_ALERT_NO_HEARTBEAT:critical'] },
  { name: 'clock 45 s ahead', facts: facts({ heartbeat: hb({ sentAt: NOW + 43 * S }) }), state: 'warning', findings: ['MV_ALERT_CLOCK_SKEW:warning'] },
  { name: 'clock 5 min behind: orders would be refused', facts: facts({ heartbeat: hb({ sentAt: NOW - 302 * S }) }), state: 'critical', findings: ['MV_ALERT_CLOCK_SKEW:critical'] },
  // SOP 5.4 review: failed, partial and missed backups
  { name: 'failed backup', facts: facts({ heartbeat: hb({ stores: [store({ lastJob: { job: 'incremental', result: 'failed', endedAt: NOW - H, error: 'disk full' } })] }) }), state: 'critical', findings: ['MV_ALERT_BACKUP_FAILED:critical'] },
  { name: 'partial backup', facts: facts({ heartbeat: hb({ stores: [store({ lastJob: { job: 'incremental', result: 'partial', endedAt: NOW - H } })] }) }), state: 'warning', findings: ['MV_ALERT_BACKUP_PARTIAL:warning'] },
  { name: 'missed daily incremental', facts: facts({ heartbeat: hb({ stores: [store({ lastIncrementalAt: NOW - 27 * H, lastFullAt: NOW - 3 * D })] }) }), state: 'critical', findings: ['MV_ALERT_BACKUP_MISSED:critical'] },
  { name: 'missed weekly full', facts: facts({ heartbeat: hb({ stores: [store({ lastFullAt: NOW - 9 * D })] }) }), state: 'warning', findings: ['MV_ALERT_FULL_MISSED:warning'] },
  { name: 'never backed up, past grace', facts: facts({ heartbeat: hb({ stores: [store({ lastFullAt: undefined, lastIncrementalAt: undefined })] }) }), state: 'critical', findings: ['MV_ALERT_BACKUP_MISSED:critical'] },
  // RPO
  { name: 'pending change older than the RPO target', facts: facts({ heartbeat: hb({ stores: [store({ pendingSince: NOW - 90 * S })] }) }), state: 'critical', findings: ['MV_ALERT_RPO_EXCEEDED:critical'] },
  { name: 'pending change within the RPO target', facts: facts({ heartbeat: hb({ stores: [store({ pendingSince: NOW - 20 * S })] }) }), state: 'ok', findings: [] },
  { name: 'idle continuous store with a watching watcher is within RPO', facts: facts({ heartbeat: hb({ stores: [store({ lastSnapshotAt: NOW - 5 * H })] }) }), state: 'ok', findings: [] },
  {
    name: 'watcher degraded and snapshot older than the RPO: agent alert + RPO',
    facts: facts({ heartbeat: hb({ stores: [store({ watcher: { state: 'scanning', since: NOW - H }, lastSnapshotAt: NOW - 10 * 60 * S })] }), agentAlerts: [alert({ code: 'MV_ALERT_WATCHER_DEGRADED', key: 'watcher:records', store: 'records' })] }),
    state: 'critical', findings: ['MV_ALERT_RPO_EXCEEDED:critical', 'MV_ALERT_WATCHER_DEGRADED:warning'],
  },
  // off site
  { name: 'off-site copy 2 h behind', facts: facts({ heartbeat: hb({ backlog: { objects: 40, bytes: 5e8, oldestAt: NOW - 2 * H } }) }), state: 'warning', findings: ['MV_ALERT_OFFSITE_BEHIND:warning'] },
  { name: 'off-site copy 2 days behind', facts: facts({ heartbeat: hb({ backlog: { objects: 40, bytes: 5e8, oldestAt: NOW - 2 * D } }) }), state: 'critical', findings: ['MV_ALERT_OFFSITE_BEHIND:critical'] },
  { name: 'small fresh backlog is fine', facts: facts({ heartbeat: hb({ backlog: { objects: 3, bytes: 1e6, oldestAt: NOW - 10 * S } }) }), state: 'ok', findings: [] },
  // verification and drills
  { name: 'unverified for 40 days, drill overdue', facts: facts({ verifications: [{ kind: 'restore', at: NOW - 100 * D, ok: true }] }), state: 'warning', findings: ['MV_ALERT_UNVERIFIED:warning', 'MV_ALERT_DRILL_OVERDUE:warning'] },
  { name: 'a check keeps backups verified but is no drill', facts: facts({ verifications: verificationsOf([log({ endedAt: NOW - D })], [{ id: 'o', state: 'done', at: NOW - 95 * D, result: { files: 3, verified: 3, failed: [] } }]) }), state: 'warning', findings: ['MV_ALERT_DRILL_OVERDUE:warning'] },
  { name: 'never verified, past grace', facts: facts({ verifications: [] }), state: 'warning', findings: ['MV_ALERT_UNVERIFIED:warning', 'MV_ALERT_DRILL_OVERDUE:warning'] },
  { name: 'failed drill', facts: facts({ verifications: [...facts().verifications, { kind: 'drill', at: NOW - D, ok: false, id: 'q2' }] }), state: 'critical', findings: ['MV_ALERT_DRILL_FAILED:critical'] },
  {
    name: 'restore done but a file failed to verify',
    facts: facts({ verifications: verificationsOf([], [{ id: 'o1', state: 'done', at: NOW - 40 * D, result: { files: 3, verified: 3, failed: [] } }, { id: 'o2', state: 'done', at: NOW - H, result: { files: 3, verified: 2, failed: ['a'] } }]) }),
    state: 'warning', findings: ['MV_ALERT_UNVERIFIED:warning', 'MV_ALERT_RESTORE_FAILED:warning'],
  },
  // disks
  { name: 'disk nearly full', facts: facts({ heartbeat: hb({ disks: [{ path: '/b', ok: true, sizeBytes: 1e12, freeBytes: 8e10 }] }) }), state: 'warning', findings: ['MV_ALERT_DISK_FULL:warning'] },
  { name: 'disk all but full', facts: facts({ heartbeat: hb({ disks: [{ path: '/b', ok: true, sizeBytes: 1e12, freeBytes: 2e10 }] }) }), state: 'critical', findings: ['MV_ALERT_DISK_FULL:critical'] },
  { name: 'disk failing SMART', facts: facts({ heartbeat: hb({ disks: [{ path: '/b', ok: true, sizeBytes: 1e12, freeBytes: 5e11, smart: 'failed' }] }) }), state: 'critical', findings: ['MV_ALERT_DISK_FAILING:critical'] },
  { name: 'disk unusable', facts: facts({ heartbeat: hb({ disks: [{ path: '/b', ok: false, error: 'EIO' }] }) }), state: 'critical', findings: ['MV_ALERT_DISK_FAILED:critical'] },
  // agent alerts
  { name: 'ransomware suspicion from the agent', facts: facts({ agentAlerts: [alert({ code: 'MV_ALERT_RANSOMWARE', severity: 'critical', key: 'ransomware:records', store: 'records' })] }), state: 'critical', findings: ['MV_ALERT_RANSOMWARE:critical'] },
  { name: 'store folder missing (agent)', facts: facts({ agentAlerts: [alert({ code: 'MV_ALERT_STORE_MISSING', severity: 'critical', key: 'watcher:records', store: 'records' })] }), state: 'critical', findings: ['MV_ALERT_STORE_MISSING:critical'] },
  { name: 'offline wins over critical', facts: facts({ heartbeatAt: NOW - H, heartbeat: hb({ sentAt: NOW - H, disks: [{ path: '/b', ok: false }] }) }), state: 'offline', findings: ['MV_ALERT_AGENT_OFFLINE:critical', 'MV_ALERT_DISK_FAILED:critical'] },
];

describe('assessSite golden cases (health and SOP 5.4 log review)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const h = assessSite(c.facts, c.now ?? NOW);
      expect({ state: h.state, findings: h.reasons.map((r) => `${r.code}:${r.severity}`) }).toEqual({ state: c.state, findings: c.findings });
    });
  }

  it('is pure and reports the figures the dashboard shows', () => {
    const f = facts({ heartbeat: hb({ backlog: { objects: 2, bytes: 10, oldestAt: NOW - 120 * S }, stores: [store({ pendingSince: NOW - 12 * S })] }) });
    const a = assessSite(f, NOW);
    expect(assessSite(f, NOW)).toEqual(a);
    expect(a).toMatchObject({ state: 'ok', clockOffsetMs: 0, lastBackupAt: NOW - 30 * S, rpoAgeS: 12, rpoTargetS: 60, offsiteLagS: 120, diskState: 'ok', lastVerifiedAt: NOW - 20 * D });
    expect(a.stores[0]).toMatchObject({ name: 'records', state: 'ok', rpoAgeS: 12, watcher: 'watching' });
  });

  it('says how far a catching-up site is and how long it takes at the measured rate', () => {
    const b = (o: Partial<Heartbeat['backlog']>): Heartbeat['backlog'] => ({ objects: 900, bytes: 12.3e9, ...o });
    expect(catchUpText(b({ toSendBytes: 12.3e9, rateBps: 625_000, etaS: 19_680, limitBps: 625_000 }))).toBe('catching up: 12.3 GB left, about 5 h (limited to 5 Mbit/s)');
    expect(catchUpText(b({ toSendBytes: 40e6, rateBps: 2e6, etaS: 20 }))).toBe('catching up: 40 MB left, about 1 min');
    expect(catchUpText(b({ toSendBytes: 3e9, rateBps: 0 }))).toBe('catching up: 3.0 GB left, no progress in the last minute');
    expect(catchUpText(b({ toSendBytes: 0, rateBps: 0 }))).toBeUndefined();
    expect(catchUpText(b({}))).toBeUndefined(); // an agent without the estimate
    const h = assessSite(facts({ heartbeat: hb({ backlog: b({ oldestAt: NOW - 2 * H, toSendBytes: 2.5e9, rateBps: 1e6, etaS: 2500 }) }) }), NOW);
    expect(h.catchUp).toBe('catching up: 2.5 GB left, about 42 min');
    expect(h.reasons.map((r) => r.code)).toEqual(['MV_ALERT_OFFSITE_BEHIND']);
    expect(assessSite(facts(), NOW).catchUp).toBeUndefined();
  });

  it('says a nearly full disk\'s free space in MB when under a GB (it said "0 GB")', () => {
    const h = assessSite(facts({ heartbeat: hb({ disks: [{ path: '/b', ok: true, sizeBytes: 30e6, freeBytes: 1.6e6 }] }) }), NOW);
    expect(h.reasons.filter((r) => r.code === 'MV_ALERT_DISK_FULL').map((r) => r.message)).toEqual(['backup disk /b is nearly full: 5.3 % free (2 MB)']);
  });

  it('gives stable keys and readable messages', () => {
    const h = assessSite(facts({ heartbeatAt: NOW - 20 * 60 * S, heartbeat: hb({ stores: [store({ lastJob: { job: 'full', result: 'failed', endedAt: NOW, error: 'EIO' } })] }) }), NOW);
    expect(h.reasons.map((r) => [r.key, r.message])).toEqual([
      ['agent:offline', 'no heartbeat from the agent for 20 min (last at 2026-06-01T11:40:00.000Z)'],
      ['clock', "the appliance's clock is 20 min ahead: restore orders will be refused"],
      ['store:records:failed', 'the last full backup of records failed: EIO'],
    ]);
  });
});
