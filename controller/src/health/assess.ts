/**
 * health/: is every clinic's data safe right now? `assessSite` is a pure function of what the
 * controller knows about one site (its last heartbeat, backup log, snapshots, restore orders,
 * drills, the agent's own open alerts) and `now`; it returns a state per site and per store with
 * the reasons. It is also the automatic review of backup logs (SOP 5.4): every finding is a rule
 * below, with a stable code, and becomes an alert (alerts/).
 *
 * Rules (thresholds in HealthPolicy; "grace" = the site is younger than the window):
 *  1. agent offline: no heartbeat for 3 × its interval (min 15 s)            → critical, state offline
 *  2. clock skew: |agent clock − stream clock| > 30 s warning, > 120 s critical (orders refuse > 2 min)
 *  3. failed backup: the store's last job failed → critical; partial → warning
 *  4. missed backup: no full or incremental for 26 h (daily) → critical; no full for 8 days (weekly) → warning
 *  5. snapshot older than the RPO target: a continuous store whose oldest unsnapshotted change, or
 *     whose newest snapshot while its watcher cannot follow events, is older than rpo_s → critical
 *  6. off-site copy behind: the oldest unreceipted object is older than 1 h → warning, 24 h → critical
 *  7. unverified backups: no successful check or verified restore in 30 days (after grace) → warning
 *  8. drill overdue: no verified restore or drill within `[drills] every` plus a day (a tenth of a
 *     shorter interval) for the drill to run (drillOverdueMs; quarterly: 92 days; after grace) →
 *     warning; the last drill or restore failed verification → critical (drill) / warning (restore)
 *  9. disk: not usable or SMART failed → critical; < 10 % free → warning, < 3 % → critical
 * 10. agent alerts (watcher degraded, store missing, ransomware suspicion, …) keep their severity
 */
import type { Alert, BackupLog, Heartbeat, SnapshotEvent } from '@medvault/protocol';

export const healthStates = ['ok', 'warning', 'critical', 'offline'] as const;
export type HealthState = (typeof healthStates)[number];
export type Severity = 'warning' | 'critical';

export const alertCodes = {
  AGENT_OFFLINE: 'MV_ALERT_AGENT_OFFLINE',
  CLOCK_SKEW: 'MV_ALERT_CLOCK_SKEW',
  BACKUP_FAILED: 'MV_ALERT_BACKUP_FAILED',
  BACKUP_PARTIAL: 'MV_ALERT_BACKUP_PARTIAL',
  BACKUP_MISSED: 'MV_ALERT_BACKUP_MISSED',
  FULL_MISSED: 'MV_ALERT_FULL_MISSED',
  RPO_EXCEEDED: 'MV_ALERT_RPO_EXCEEDED',
  OFFSITE_BEHIND: 'MV_ALERT_OFFSITE_BEHIND',
  UNVERIFIED: 'MV_ALERT_UNVERIFIED',
  DRILL_OVERDUE: 'MV_ALERT_DRILL_OVERDUE',
  DRILL_FAILED: 'MV_ALERT_DRILL_FAILED',
  RESTORE_FAILED: 'MV_ALERT_RESTORE_FAILED',
  DISK_FAILED: 'MV_ALERT_DISK_FAILED',
  DISK_FAILING: 'MV_ALERT_DISK_FAILING',
  DISK_FULL: 'MV_ALERT_DISK_FULL',
  NO_HEARTBEAT: 'MV_ALERT_NO_HEARTBEAT',
  /** Controller side: no event from any site (raised by the monitor, not by assessSite). */
  NO_EVENTS: 'MV_ALERT_NO_EVENTS',
} as const;

export interface HealthPolicy {
  offlineMissed: number;
  offlineMinMs: number;
  skewWarnMs: number;
  skewCriticalMs: number;
  incrementalMaxMs: number;
  fullMaxMs: number;
  offsiteWarnMs: number;
  offsiteCriticalMs: number;
  verifyMaxMs: number;
  drillMaxMs: number;
  diskWarnFree: number;
  diskCriticalFree: number;
}

const H = 3600_000;
const D = 24 * H;
/**
 * How long without a passed drill counts as overdue when drills are scheduled every `everyMs`
 * (`[drills] every`): the interval plus a day, or a tenth of it when shorter, for the drill to run.
 */
export const drillOverdueMs = (everyMs: number): number => everyMs + Math.min(D, everyMs / 10);
export const defaultPolicy: HealthPolicy = {
  offlineMissed: 3, offlineMinMs: 15_000, skewWarnMs: 30_000, skewCriticalMs: 120_000,
  incrementalMaxMs: 26 * H, fullMaxMs: 8 * D, offsiteWarnMs: H, offsiteCriticalMs: D,
  verifyMaxMs: 30 * D, drillMaxMs: drillOverdueMs(91 * D), diskWarnFree: 0.1, diskCriticalFree: 0.03,
};

/** A verified restore or a drill: when it ended and whether every file verified. */
export interface Verification {
  kind: 'restore' | 'drill' | 'check';
  at: number;
  ok: boolean;
  id?: string;
  /** Drills: the store drilled and, when it failed, why (the first problem of its log entry). */
  store?: string;
  reason?: string;
}

/** Everything assessSite looks at, for one site. */
export interface SiteFacts {
  site: string;
  firstSeenAt: number;
  heartbeat?: Heartbeat;
  /** Stream time of that heartbeat. */
  heartbeatAt?: number;
  /** The agent's open alerts. */
  agentAlerts: Alert[];
  /** Backup log entries, any order. */
  log: BackupLog[];
  snapshots: SnapshotEvent[];
  /** Restores (from order statuses), checks (backup log) and drills (hook: none yet). */
  verifications: Verification[];
  /** Since when this controller has been listening: silence before that is not the agent's. */
  listeningSince?: number;
}

export interface Finding {
  /** Stable per cause: an alert opens once per key and resolves when the key is gone. */
  key: string;
  code: string;
  severity: Severity;
  message: string;
  store?: string;
  source: 'controller' | 'agent';
}

export interface StoreHealth {
  name: string;
  state: HealthState;
  reasons: Finding[];
  continuous: boolean;
  rpoS: number;
  lastFullAt?: number;
  lastIncrementalAt?: number;
  lastContinuousAt?: number;
  lastSnapshotAt?: number;
  /** Seconds of changes a loss now would cost (continuous: since the oldest pending change). */
  rpoAgeS?: number;
  /** The target rpoAgeS is held to: rpo_s for continuous stores, the daily schedule otherwise. */
  rpoTargetS: number;
  watcher?: string;
  lastJob?: { job: string; result: string; endedAt: number };
}

export interface SiteHealth {
  site: string;
  state: HealthState;
  reasons: Finding[];
  stores: StoreHealth[];
  agentVersion?: string;
  lastHeartbeatAt?: number;
  /** Agent clock minus controller (stream) clock, ms. */
  clockOffsetMs?: number;
  lastBackupAt?: number;
  /** RPO age and target of the store worst off against its target, seconds. */
  rpoAgeS?: number;
  rpoTargetS?: number;
  /** Age of the oldest object not yet receipted off site, seconds (0: nothing pending). */
  offsiteLagS?: number;
  backlog?: Heartbeat['backlog'];
  /** `catching up: 12.3 GB left, about 4 h` while objects wait to go off site (from the heartbeat's estimate). */
  catchUp?: string;
  diskState: HealthState | 'unknown';
  disks: NonNullable<Heartbeat['disks']>;
  lastVerifiedAt?: number;
}

const rank = (s: HealthState) => healthStates.indexOf(s);
export const worst = (states: HealthState[]): HealthState => states.reduce<HealthState>((a, b) => (rank(b) > rank(a) ? b : a), 'ok');
const stateOf = (fs: Finding[]): HealthState => worst(fs.map((f) => f.severity));
const ago = (ms: number) => (ms >= 2 * D ? `${Math.round(ms / D)} days` : ms >= 2 * H ? `${Math.round(ms / H)} h` : ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);
const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;

/** Bytes in decimal units as the dashboard shows them: `12.3 GB`, else whole MB, at least `1 MB` (a nearly full small disk is not "0 GB"). */
const decimalSize = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(n / 1e6))} MB`);

/** The health of one site at `now`. Pure: same facts and `now`, same answer. */
/**
 * The catch-up line for a site whose agent reports bytes still to send: how much is left and, at
 * the measured rate, about how long it takes; undefined when nothing is left (or the agent is too
 * old to estimate).
 */
export function catchUpText(b: Heartbeat['backlog'] | undefined): string | undefined {
  if (!b?.toSendBytes) return undefined;
  const left = decimalSize(b.toSendBytes);
  const eta = b.etaS === undefined ? 'no progress in the last minute' : b.etaS >= 3600 ? `about ${Math.round(b.etaS / 3600)} h` : `about ${Math.max(1, Math.round(b.etaS / 60))} min`;
  const limit = b.limitBps ? ` (limited to ${+((b.limitBps * 8) / 1e6).toFixed(2)} Mbit/s)` : '';
  return `catching up: ${left} left, ${eta}${limit}`;
}

export function assessSite(f: SiteFacts, now: number, p: HealthPolicy = defaultPolicy): SiteHealth {
  const site: Finding[] = [];
  const add = (to: Finding[], x: Omit<Finding, 'source'>) => to.push({ ...x, source: 'controller' });
  const hb = f.heartbeat;
  const young = (ms: number) => now - f.firstSeenAt < ms;

  // 1. offline
  let offline = false;
  if (hb && f.heartbeatAt !== undefined) {
    const limit = Math.max(p.offlineMinMs, p.offlineMissed * (hb.intervalS ?? 5) * 1000);
    const silent = now - Math.max(f.heartbeatAt, f.listeningSince ?? 0);
    if (silent > limit) {
      offline = true;
      add(site, { key: 'agent:offline', code: alertCodes.AGENT_OFFLINE, severity: 'critical', message: `no heartbeat from the agent for ${ago(silent)} (last at ${new Date(f.heartbeatAt).toISOString()})` });
    }
  } else if (now - Math.max(f.firstSeenAt, f.listeningSince ?? 0) > p.offlineMinMs) {
    offline = true;
    add(site, { key: 'agent:offline', code: alertCodes.NO_HEARTBEAT, severity: 'critical', message: 'the site has sent events but never a heartbeat' });
  }

  // 2. clock skew
  const clockOffsetMs = hb && f.heartbeatAt !== undefined ? hb.sentAt - f.heartbeatAt : undefined;
  if (clockOffsetMs !== undefined && Math.abs(clockOffsetMs) > p.skewWarnMs) {
    const critical = Math.abs(clockOffsetMs) > p.skewCriticalMs;
    add(site, {
      key: 'clock', code: alertCodes.CLOCK_SKEW, severity: critical ? 'critical' : 'warning',
      message: `the appliance's clock is ${ago(Math.abs(clockOffsetMs))} ${clockOffsetMs > 0 ? 'ahead' : 'behind'}${critical ? ': restore orders will be refused' : ''}`,
    });
  }

  // 3-5. stores
  const stores: StoreHealth[] = (hb?.stores ?? []).map((st) => {
    const r: Finding[] = [];
    const k = (what: string) => `store:${st.name}:${what}`;
    if (st.lastJob?.result === 'failed') {
      add(r, { key: k('failed'), code: alertCodes.BACKUP_FAILED, severity: 'critical', store: st.name, message: `the last ${st.lastJob.job} backup of ${st.name} failed${st.lastJob.error ? `: ${st.lastJob.error}` : ''}`.slice(0, 2000) });
    } else if (st.lastJob?.result === 'partial') {
      add(r, { key: k('failed'), code: alertCodes.BACKUP_PARTIAL, severity: 'warning', store: st.name, message: `the last ${st.lastJob.job} backup of ${st.name} left files out${st.lastJob.error ? `: ${st.lastJob.error}` : ''}`.slice(0, 2000) });
    }
    const lastScheduled = Math.max(st.lastFullAt ?? 0, st.lastIncrementalAt ?? 0);
    if (lastScheduled ? now - lastScheduled > p.incrementalMaxMs : !young(p.incrementalMaxMs)) {
      add(r, { key: k('missed'), code: alertCodes.BACKUP_MISSED, severity: 'critical', store: st.name, message: lastScheduled ? `no full or incremental backup of ${st.name} for ${ago(now - lastScheduled)} (daily expected)` : `${st.name} has never had a full or incremental backup` });
    } else if (st.lastFullAt ? now - st.lastFullAt > p.fullMaxMs : !young(p.fullMaxMs)) {
      add(r, { key: k('full-missed'), code: alertCodes.FULL_MISSED, severity: 'warning', store: st.name, message: st.lastFullAt ? `no full backup of ${st.name} for ${ago(now - st.lastFullAt)} (weekly expected)` : `${st.name} has never had a full backup` });
    }
    let rpoAgeS: number | undefined;
    if (st.continuous) {
      const watching = st.watcher?.state === 'watching';
      const exposedSince = st.pendingSince ?? (watching ? undefined : st.lastSnapshotAt);
      rpoAgeS = exposedSince !== undefined ? Math.max(0, Math.round((now - exposedSince) / 1000)) : 0;
      if (rpoAgeS > st.rpoS) {
        add(r, { key: k('rpo'), code: alertCodes.RPO_EXCEEDED, severity: 'critical', store: st.name, message: `${st.name}: changes are ${ago(rpoAgeS * 1000)} without a snapshot, over the RPO target of ${ago(st.rpoS * 1000)}${watching ? '' : ` (watcher ${st.watcher?.state ?? 'not running'})`}` });
      }
    } else if (st.lastSnapshotAt !== undefined) rpoAgeS = Math.round((now - st.lastSnapshotAt) / 1000);
    for (const a of f.agentAlerts.filter((x) => x.store === st.name)) r.push(fromAgent(a));
    return {
      name: st.name, state: stateOf(r), reasons: r, continuous: st.continuous, rpoS: st.rpoS, rpoTargetS: st.continuous ? st.rpoS : Math.round(p.incrementalMaxMs / 1000),
      ...(st.lastFullAt ? { lastFullAt: st.lastFullAt } : {}), ...(st.lastIncrementalAt ? { lastIncrementalAt: st.lastIncrementalAt } : {}),
      ...(st.lastContinuousAt ? { lastContinuousAt: st.lastContinuousAt } : {}), ...(st.lastSnapshotAt ? { lastSnapshotAt: st.lastSnapshotAt } : {}),
      ...(rpoAgeS !== undefined ? { rpoAgeS } : {}), ...(st.watcher ? { watcher: st.watcher.state } : {}),
      ...(st.lastJob ? { lastJob: { job: st.lastJob.job, result: st.lastJob.result, endedAt: st.lastJob.endedAt } } : {}),
    };
  });

  // 6. off site
  let offsiteLagS: number | undefined;
  if (hb) {
    offsiteLagS = hb.backlog.oldestAt !== undefined && hb.backlog.objects > 0 ? Math.max(0, Math.round((now - hb.backlog.oldestAt) / 1000)) : 0;
    const lag = offsiteLagS * 1000;
    if (lag > p.offsiteWarnMs) {
      add(site, { key: 'offsite', code: alertCodes.OFFSITE_BEHIND, severity: lag > p.offsiteCriticalMs ? 'critical' : 'warning', message: `the off-site copy is ${ago(lag)} behind: ${hb.backlog.objects} objects (${Math.round(hb.backlog.bytes / 1e6)} MB) not yet receipted` });
    }
  }

  // 7-8. verification and drills
  const verified = f.verifications.filter((v) => v.ok).reduce((m, v) => Math.max(m, v.at), 0);
  const restoreOrDrill = f.verifications.filter((v) => v.ok && v.kind !== 'check').reduce((m, v) => Math.max(m, v.at), 0);
  if (verified ? now - verified > p.verifyMaxMs : !young(p.verifyMaxMs)) {
    add(site, { key: 'unverified', code: alertCodes.UNVERIFIED, severity: 'warning', message: verified ? `no backup verified (check or restore) for ${ago(now - verified)}` : 'no backup of this site has ever been verified by a check or a restore' });
  }
  if (restoreOrDrill ? now - restoreOrDrill > p.drillMaxMs : !young(p.drillMaxMs)) {
    const expected = `at most ${ago(p.drillMaxMs)} apart by the drill schedule`;
    add(site, { key: 'drill', code: alertCodes.DRILL_OVERDUE, severity: 'warning', message: restoreOrDrill ? `the last verified restore or drill was ${ago(now - restoreOrDrill)} ago (${expected})` : `no verified restore or drill yet (${expected})` });
  }
  const lastOf = (kind: Verification['kind']) => f.verifications.filter((v) => v.kind === kind).sort((a, b) => b.at - a.at)[0];
  const drill = lastOf('drill');
  if (drill && !drill.ok) add(site, { key: 'drill:failed', code: alertCodes.DRILL_FAILED, severity: 'critical', ...(drill.store ? { store: drill.store } : {}), message: `the last drill${drill.store ? ` of store ${drill.store}` : ''}${drill.id ? ` (${drill.id})` : ''} failed${drill.reason ? `: ${drill.reason}` : ''}`.slice(0, 2000) });
  const restore = lastOf('restore');
  if (restore && !restore.ok) add(site, { key: 'restore:failed', code: alertCodes.RESTORE_FAILED, severity: 'warning', message: `the last restore${restore.id ? ` (order ${restore.id})` : ''} failed or did not verify every file` });

  // 9. disks
  const disks = hb?.disks ?? [];
  const diskFindings: Finding[] = [];
  for (const d of disks) {
    const k = `disk:${d.path}`;
    if (!d.ok) add(diskFindings, { key: k, code: alertCodes.DISK_FAILED, severity: 'critical', message: `backup disk ${d.path} is not usable${d.error ? `: ${d.error}` : ''}`.slice(0, 2000) });
    else if (d.smart === 'failed') add(diskFindings, { key: k, code: alertCodes.DISK_FAILING, severity: 'critical', message: `backup disk ${d.path}: SMART health check failed; replace the disk` });
    else if (d.sizeBytes && d.freeBytes !== undefined) {
      const free = d.freeBytes / d.sizeBytes;
      if (free < p.diskWarnFree) add(diskFindings, { key: k, code: alertCodes.DISK_FULL, severity: free < p.diskCriticalFree ? 'critical' : 'warning', message: `backup disk ${d.path} is nearly full: ${pct(free)} free (${decimalSize(d.freeBytes)})` });
    }
  }
  site.push(...diskFindings);

  // 10. the agent's own alerts without a store
  for (const a of f.agentAlerts.filter((x) => !x.store || !stores.some((s) => s.name === x.store))) site.push(fromAgent(a));

  const reasons = [...site, ...stores.flatMap((s) => s.reasons)];
  const lastBackupAt = Math.max(0, ...stores.map((s) => s.lastSnapshotAt ?? 0), ...f.snapshots.map((s) => s.time));
  // The site's RPO figure is its worst store: the largest age relative to its target.
  const rpoWorst = stores.filter((s) => s.rpoAgeS !== undefined).sort((a, b) => b.rpoAgeS! / Math.max(1, b.rpoTargetS) - a.rpoAgeS! / Math.max(1, a.rpoTargetS))[0];
  return {
    site: f.site,
    state: offline ? 'offline' : stateOf(reasons),
    reasons,
    stores,
    ...(hb ? { agentVersion: hb.agentVersion, backlog: hb.backlog } : {}),
    ...(catchUpText(hb?.backlog) ? { catchUp: catchUpText(hb?.backlog)! } : {}),
    ...(f.heartbeatAt !== undefined ? { lastHeartbeatAt: f.heartbeatAt } : {}),
    ...(clockOffsetMs !== undefined ? { clockOffsetMs } : {}),
    ...(lastBackupAt ? { lastBackupAt } : {}),
    ...(rpoWorst ? { rpoAgeS: rpoWorst.rpoAgeS!, rpoTargetS: rpoWorst.rpoTargetS } : {}),
    ...(offsiteLagS !== undefined ? { offsiteLagS } : {}),
    diskState: disks.length ? stateOf(diskFindings) : 'unknown',
    disks,
    ...(verified ? { lastVerifiedAt: verified } : {}),
  };
}

function fromAgent(a: Alert): Finding {
  return {
    key: `agent:${a.key}`, code: a.code, severity: a.severity === 'critical' ? 'critical' : 'warning', message: a.message,
    ...(a.store ? { store: a.store } : {}), source: 'agent',
  };
}

/**
 * Verifications from the record: successful `check` jobs in the backup log and finished restore
 * orders (done with every file verified = ok; failed or with failures = not ok). Drills feed in
 * through the same list when they land.
 */
export function verificationsOf(
  log: BackupLog[],
  orders: Array<{ id: string; state: string; at: number; result?: { files: number; verified: number; failed: string[] } }>,
  drills: Verification[] = [],
): Verification[] {
  const out: Verification[] = [];
  for (const e of log) {
    if (e.job === 'check') out.push({ kind: 'check', at: e.endedAt, ok: e.result === 'ok' });
    if (e.job === 'drill') out.push({ kind: 'drill', at: e.endedAt, ok: e.result === 'ok', id: e.orderId ?? e.jobId, store: e.store, ...(e.errors[0] ? { reason: e.errors[0].message } : {}) });
  }
  for (const o of orders) {
    if (o.state === 'done') out.push({ kind: 'restore', at: o.at, id: o.id, ok: !!o.result && o.result.failed.length === 0 && o.result.verified >= o.result.files });
    else if (o.state === 'failed') out.push({ kind: 'restore', at: o.at, id: o.id, ok: false });
  }
  return [...out, ...drills];
}
