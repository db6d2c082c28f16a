/**
 * compliance/: the compliance report for a period: evidence per SOP clause and HIPAA 164.308(a)(7)
 * and 164.312, each marked pass or fail (a gap fails). `gatherEvidence` reads it (backup log from
 * MV_EVENTS, snapshots and their needs lists, receipts, users, the audit chain, incidents);
 * `complianceReport` is a pure function of the evidence.
 *
 * Schedule adherence: each store's expected runs are the occurrences of its schedule (from its
 * heartbeat; the SOP's weekly full `0 2 * * 0` and daily incremental `0 2 * * *` otherwise) in
 * the period; an occurrence is kept when a successful run of its kind (a full also counts as an
 * incremental) starts between it and the next occurrence. Expected runs start at the later of the
 * period's start and the site's first-seen time (fleet registry): a site is not late for runs due
 * before it existed (the grace the health rules give a new site).
 */
import { Cron } from 'croner';
import { decode, streams, subjects, verifyChain, type BackupLog, type SnapshotEvent, type SnapshotNeeds } from '@medvault/protocol';
import { readChain } from '../audit/read.js';
import type { Bus } from '../bus.js';
import type { FleetRegistry, SiteState } from '../fleet/registry.js';
import type { OffsiteIndex } from '../ingest/offsite-index.js';
import type { DrillEntry } from '../drills/drill-book.js';
import type { Incident } from '../incidents/incidents.js';
import { listReviews, searchLog, type LogReview } from '../logs/backup-log.js';
import type { Mark, ReportInput, ReportSection } from '../reports/render.js';

export const SOP_SCHEDULE = { full: '0 2 * * 0', incremental: '0 2 * * *', timezone: 'UTC' } as const;
const DAY = 86_400_000;
const QUARTER = 92 * DAY;

export interface StoreAdherence {
  site: string;
  store: string;
  kind: 'full' | 'incremental';
  schedule: string;
  expected: number;
  kept: number;
  /** Occurrences without a successful run. */
  missed: number[];
}

export interface Evidence {
  period: { from: number; to: number };
  generatedAt: number;
  generatedBy: string;
  log: BackupLog[];
  adherence: StoreAdherence[];
  snapshots: Array<{ site: string; snapshot: SnapshotEvent; needed?: number; receipted?: number }>;
  transport: { servers: string[]; tls: boolean; https: boolean };
  users: Array<{ name: string; role: string; mfa: boolean }>;
  reviews: LogReview[];
  /** Drills that started in the period, from the drill book (else the backup log's drill entries). */
  drills: Drill[];
  drillSource: 'drill book' | 'backup log';
  incidents: Incident[];
  audit: { entries: number; ok: boolean; problem?: string };
}

/** Occurrences of `pattern` in [from, to) and whether a successful run of `kinds` started before the next one. */
export function adherence(log: BackupLog[], o: { site: string; store: string; kind: 'full' | 'incremental'; pattern: string; timezone: string; from: number; to: number }): StoreAdherence {
  const cron = new Cron(o.pattern, { timezone: o.timezone, paused: true });
  const times: number[] = [];
  let t = cron.nextRun(new Date(o.from - 1));
  while (t && t.getTime() < o.to && times.length < 100_000) {
    times.push(t.getTime());
    t = cron.nextRun(t);
  }
  const end = t ? t.getTime() : Infinity;
  const kinds = o.kind === 'full' ? ['full'] : ['full', 'incremental'];
  const runs = log.filter((e) => e.site === o.site && e.store === o.store && e.result === 'ok' && kinds.includes(e.job)).map((e) => e.startedAt);
  const missed = times.filter((at, i) => !runs.some((r) => r >= at && r < (times[i + 1] ?? end)));
  return { site: o.site, store: o.store, kind: o.kind, schedule: o.pattern, expected: times.length, kept: times.length - missed.length, missed };
}

/**
 * Every store's adherence in the period: each store's own schedule when its heartbeat carries one,
 * else the SOP default; counted from the later of the period start and the site's first-seen time.
 */
export function scheduleAdherence(log: BackupLog[], tail: BackupLog[], sites: Pick<SiteState, 'site' | 'firstSeenAt' | 'heartbeat'>[], period: { from: number; to: number }): StoreAdherence[] {
  const stores = new Map<string, { site: string; store: string; schedule: { full: string; incremental: string; timezone?: string | undefined } }>();
  for (const e of log) if (!['restore', 'drill', 'check'].includes(e.job)) stores.set(`${e.site}\0${e.store}`, { site: e.site, store: e.store, schedule: SOP_SCHEDULE });
  for (const s of sites) for (const st of s.heartbeat?.stores ?? []) stores.set(`${s.site}\0${st.name}`, { site: s.site, store: st.name, schedule: st.schedule ?? SOP_SCHEDULE });
  const firstSeen = new Map(sites.map((s) => [s.site, s.firstSeenAt]));
  return [...stores.values()].flatMap(({ site, store, schedule }) => (['full', 'incremental'] as const).map((kind) =>
    adherence([...log, ...tail], { site, store, kind, pattern: schedule[kind], timezone: schedule.timezone ?? 'UTC', from: Math.max(period.from, firstSeen.get(site) ?? period.from), to: period.to })));
}

export interface Drill {
  site: string;
  store: string;
  startedAt: number;
  by: string;
  ok: boolean;
  files: number;
  rtoS?: number;
  rpoS?: number;
}

export interface EvidenceDeps {
  bus: Pick<Bus, 'scanSubject' | 'readSubject' | 'lastOnSubject'>;
  fleet: Pick<FleetRegistry, 'sites' | 'snapshots'>;
  index: Pick<OffsiteIndex, 'get'>;
  users: () => Promise<Array<{ name: string; role: string; totpSecret?: string }>>;
  incidents: () => Promise<Incident[]>;
  /** The drill book's entries, when drills are run from the controller. */
  drills?: () => DrillEntry[];
  transport: Evidence['transport'];
}

export async function gatherEvidence(d: EvidenceDeps, period: { from: number; to: number }, by: string, now: number): Promise<Evidence> {
  const sites = d.fleet.sites();
  const log = await searchLog(d.bus, sites.map((s) => s.site), { since: period.from, until: period.to });
  // Runs after the period keep the period's last occurrence only if they start before the next one: read a day more.
  const tail = await searchLog(d.bus, sites.map((s) => s.site), { since: period.to, until: period.to + 8 * DAY });
  const adh = scheduleAdherence(log, tail, sites, period);

  const snapshots: Evidence['snapshots'] = [];
  for (const s of sites) {
    const inPeriod = d.fleet.snapshots(s.site).filter((x) => x.time >= period.from && x.time < period.to);
    if (inPeriod.length === 0) continue;
    const needs = new Map<string, SnapshotNeeds[]>();
    for await (const m of d.bus.scanSubject(streams.events.name, subjects.event(s.site, 'needs'))) {
      try {
        const n = decode(m.data, 'mv.snapshot-needs.v1');
        if (n.site !== s.site) continue;
        const parts = needs.get(n.snapshot) ?? [];
        if (!parts.some((p) => p.part === n.part)) parts.push(n);
        needs.set(n.snapshot, parts);
      } catch {
        continue;
      }
    }
    for (const snap of inPeriod) {
      const parts = needs.get(snap.id);
      if (!parts || parts.length < parts[0]!.parts) {
        snapshots.push({ site: s.site, snapshot: snap });
        continue;
      }
      const objects = parts.flatMap((p) => p.objects.map((o) => ({ ...o, repo: p.repo })));
      const receipted = objects.filter((o) => d.index.get({ site: s.site, repo: o.repo, kind: o.kind, hash: o.hash })).length;
      snapshots.push({ site: s.site, snapshot: snap, needed: objects.length, receipted });
    }
  }
  const inPeriod = (t: number) => t >= period.from && t < period.to;
  const drills: Drill[] = d.drills
    ? d.drills().flatMap((e) => (e.result && inPeriod(e.result.startedAt) ? [{
      site: e.site, store: e.store, startedAt: e.result.startedAt, by: e.result.requestedBy.id, ok: e.result.result === 'passed',
      files: Math.max(0, ...e.result.runs.map((r) => r.files)), rtoS: Math.max(0, ...e.result.runs.map((r) => r.rtoS)), ...(e.result.rpoS !== undefined ? { rpoS: e.result.rpoS } : {}),
    }] : []))
    : log.filter((x) => x.job === 'drill').map((x) => ({ site: x.site, store: x.store, startedAt: x.startedAt, by: x.actor.id, ok: x.result === 'ok', files: x.files }));
  const chain = await readChain(d.bus);
  const report = verifyChain(chain.values);
  return {
    period, generatedAt: now, generatedBy: by, log, adherence: adh, snapshots, transport: d.transport,
    users: (await d.users()).map((u) => ({ name: u.name, role: u.role, mfa: Boolean(u.totpSecret) })),
    reviews: await listReviews(d.bus, period),
    drills: drills.sort((a, b) => a.startedAt - b.startedAt), drillSource: d.drills ? 'drill book' : 'backup log',
    incidents: (await d.incidents()).filter((i) => i.openedAt < period.to && (i.closedAt ?? Infinity) >= period.from),
    audit: { entries: report.entries, ok: report.ok, ...(report.problems[0] ? { problem: report.problems[0].message } : {}) },
  };
}

const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const all = (marks: (Mark | undefined)[]): Mark => (marks.includes('fail') ? 'fail' : 'pass');

/** The compliance report: every clause with its evidence and mark; the whole fails if one does. */
export function complianceReport(e: Evidence): ReportInput {
  const days = (e.period.to - e.period.from) / DAY;
  const byResult = (r: BackupLog['result']) => e.log.filter((x) => x.result === r).length;
  const backups = e.log.filter((x) => ['full', 'incremental', 'continuous'].includes(x.job));

  const schedule: ReportSection = {
    heading: 'SOP 5.1: weekly full and daily incremental backups (schedule adherence per store)',
    mark: e.adherence.length === 0 ? 'fail' : all(e.adherence.map((a) => (a.missed.length ? 'fail' : 'pass'))),
    facts: [{ label: 'Stores', value: new Set(e.adherence.map((a) => `${a.site}/${a.store}`)).size, mark: e.adherence.length ? 'pass' : 'fail' },
      { label: 'Schedules', value: `each store's own (from its heartbeat), else the SOP default: full "${SOP_SCHEDULE.full}", incremental "${SOP_SCHEDULE.incremental}" (UTC)` }],
    tables: [{ columns: ['site', 'store', 'run', 'schedule', 'expected', 'kept', 'missed', 'first missed'], rows: e.adherence.map((a) => ({
      cells: [a.site, a.store, a.kind, a.schedule, a.expected, a.kept, a.missed.length, a.missed[0] !== undefined ? iso(a.missed[0]) : '-'], mark: a.missed.length ? 'fail' as const : 'pass' as const,
    })) }],
  };
  const logSection: ReportSection = {
    heading: 'SOP 5.1: backup log (time, date, type, responsible person)',
    mark: backups.length > 0 ? 'pass' : 'fail',
    facts: [{ label: 'Entries', value: e.log.length, mark: backups.length > 0 ? 'pass' : 'fail' }, { label: 'Successful', value: byResult('ok') },
      { label: 'Partial', value: byResult('partial'), ...(byResult('partial') ? { mark: 'warn' as const } : {}) }, { label: 'Failed', value: byResult('failed'), ...(byResult('failed') ? { mark: 'fail' as const } : {}) }],
    paragraphs: ['Every entry names its start, end, date, type, store, site and the responsible person or scheduler; export it with `medvault log --format csv`.'],
  };
  const encryption: ReportSection = {
    heading: 'SOP 5.1 / 5.3, HIPAA 164.312(a)(2)(iv), 164.312(e)(1): encryption at rest and in transit',
    mark: all([e.transport.tls ? 'pass' : 'fail']),
    facts: [{ label: 'At rest', value: 'repository format v1: every chunk, tree and index sealed with AES-256-GCM under per-pack keys; the controller holds ciphertext only', mark: 'pass' },
      { label: 'NATS', value: `${e.transport.tls ? 'TLS only' : 'NOT TLS'} (${e.transport.servers.join(', ')})`, mark: e.transport.tls ? 'pass' : 'fail' },
      { label: 'HTTP API', value: e.transport.https ? 'HTTPS' : 'plain HTTP on loopback (behind a TLS proxy)', mark: e.transport.https ? 'pass' : 'warn' }],
  };
  const covered = e.snapshots.filter((s) => s.needed !== undefined && s.receipted === s.needed);
  const offsite: ReportSection = {
    heading: 'SOP 5.1: off-site copies (every object of each snapshot receipted)',
    mark: e.snapshots.length > 0 && covered.length === e.snapshots.length ? 'pass' : 'fail',
    facts: [{ label: 'Snapshots in period', value: e.snapshots.length, mark: e.snapshots.length ? 'pass' : 'fail' }, { label: 'Fully off site', value: covered.length, mark: covered.length === e.snapshots.length && e.snapshots.length > 0 ? 'pass' : 'fail' }],
    tables: [{ title: 'Snapshots not fully off site', columns: ['site', 'snapshot', 'store', 'time', 'objects needed', 'receipted'], rows: e.snapshots.filter((s) => !covered.includes(s)).slice(0, 500).map((s) => ({
      cells: [s.site, s.snapshot.id.slice(0, 12), s.snapshot.store, iso(s.snapshot.time), s.needed ?? 'no needs list', s.receipted ?? '-'], mark: 'fail' as const,
    })) }],
  };
  const drills = e.drills;
  const drillSites = [...new Set(e.adherence.map((a) => a.site))];
  const required = Math.max(1, Math.floor(days / (QUARTER / DAY)));
  const drillRows = drillSites.map((site) => {
    const ok = drills.filter((x) => x.site === site && x.ok).length;
    return { cells: [site, drills.filter((x) => x.site === site).length, ok, required], mark: ok >= required ? 'pass' as const : 'fail' as const };
  });
  const drillSection: ReportSection = {
    heading: 'SOP 5.4, HIPAA 164.308(a)(7)(ii)(D): quarterly disaster-recovery drills',
    mark: drillRows.length > 0 && drillRows.every((r) => r.mark === 'pass') ? 'pass' : 'fail',
    facts: [{ label: 'Drills in period', value: drills.length }, { label: 'Passed', value: drills.filter((x) => x.ok).length }, { label: 'Source', value: e.drillSource }],
    tables: [{ columns: ['site', 'drills', 'passed', 'required'], rows: drillRows }, { title: 'Drill runs', columns: ['site', 'store', 'started', 'by', 'files', 'RTO s', 'RPO s'], rows: drills.map((x) => ({
      cells: [x.site, x.store, iso(x.startedAt), x.by, x.files, x.rtoS ?? '-', x.rpoS ?? '-'], mark: x.ok ? 'pass' as const : 'fail' as const,
    })) }],
  };
  const reviews: ReportSection = {
    heading: 'SOP 5.4: regular review of backup logs',
    mark: e.reviews.length > 0 ? 'pass' : 'fail',
    facts: [{ label: 'Reviews', value: e.reviews.length, mark: e.reviews.length > 0 ? 'pass' : 'fail' }],
    tables: [{ columns: ['reviewed at', 'by', 'period', 'entries', 'not ok', 'note'], rows: e.reviews.map((r) => ({ cells: [iso(r.at), r.by, `${iso(r.from)} to ${iso(r.to)}`, r.entries, r.failed, r.note] })) }],
  };
  const noMfa = e.users.filter((u) => !u.mfa);
  const mfa: ReportSection = {
    heading: 'SOP 5.3, HIPAA 164.312(a)(1), 164.312(d): unique accounts and multi-factor authentication',
    mark: e.users.length > 0 && noMfa.length === 0 ? 'pass' : 'fail',
    facts: [{ label: 'Accounts', value: e.users.length }, { label: 'With TOTP second factor', value: `${e.users.length - noMfa.length} of ${e.users.length}`, mark: noMfa.length === 0 && e.users.length > 0 ? 'pass' : 'fail' },
      { label: 'Roles', value: [...new Set(e.users.map((u) => u.role))].sort().join(', ') || '-' }],
  };
  const open = e.incidents.filter((i) => i.state === 'open');
  const incidents: ReportSection = {
    heading: 'SOP 5.5, HIPAA 164.308(a)(7)(ii)(B): incidents, restores and their resolution',
    mark: open.length === 0 ? 'pass' : 'fail',
    facts: [{ label: 'Incidents', value: e.incidents.length }, { label: 'Closed with a resolution', value: e.incidents.length - open.length }, { label: 'Still open', value: open.length, mark: open.length ? 'fail' : 'pass' }],
    tables: [{ columns: ['incident', 'title', 'opened', 'closed', 'restore orders', 'resolution'], rows: e.incidents.map((i) => ({
      cells: [i.id.slice(0, 8), i.title, iso(i.openedAt), i.closedAt ? iso(i.closedAt) : 'open', i.orders.length, i.resolution ?? '-'], mark: i.state === 'closed' ? 'pass' as const : 'fail' as const,
    })) }],
  };
  const audit: ReportSection = {
    heading: 'HIPAA 164.312(b), 164.312(c)(1): audit controls and integrity',
    mark: e.audit.ok ? 'pass' : 'fail',
    facts: [{ label: 'Controller audit chain', value: `${e.audit.entries} entries, ${e.audit.ok ? 'hash chain intact' : `BROKEN: ${e.audit.problem}`}`, mark: e.audit.ok ? 'pass' : 'fail' },
      { label: 'Off-site integrity', value: 'every object is hash-checked before a signed receipt; the scrub reads copies back', mark: 'pass' }],
  };
  const sections = [schedule, logSection, encryption, offsite, drillSection, reviews, mfa, incidents, audit];
  const summary: ReportSection = {
    heading: 'Summary',
    mark: all(sections.map((s) => s.mark)),
    tables: [{ columns: ['clause', 'evidence'], rows: sections.map((s) => ({ cells: [s.heading.split(':')[0]!, s.heading.split(': ').slice(1).join(': ')], mark: s.mark ?? 'info' })) }],
    paragraphs: ['HIPAA 164.308(a)(7)(ii)(A) data backup plan: SOP 5.1 rows; (B) disaster recovery plan and (C) emergency mode: SOP 5.5 rows; (D) testing: SOP 5.4 drills.'],
  };
  return {
    type: 'mv.report.v1', kind: 'compliance', title: 'Backup and disaster-recovery compliance report', subjects: [...new Set(e.adherence.map((a) => a.site))],
    period: e.period, generatedAt: e.generatedAt, generatedBy: e.generatedBy, mark: summary.mark!, sections: [summary, ...sections],
  };
}
