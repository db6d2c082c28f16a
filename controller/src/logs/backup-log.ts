/**
 * logs/: the SOP 5.1 backup log over all sites: every mv.backup-log.v1 the agents sent, read from
 * MV_EVENTS (the system of record, not the registry's bounded in-memory tail), filtered by site,
 * store, job type, person (actor id), result and period, exported as CSV or JSON. Log reviews (SOP
 * 5.4: who reviewed which period, with a note) are entries `log.review` of the audit chain.
 * Rules: a malformed or foreign-site message in the stream is skipped, never trusted; CSV cells are
 * quoted (RFC 4180) and spreadsheet formulas defused.
 */
import { z } from 'zod';
import { decode, jobKinds, parseEventSubject, streams, subjects, type BackupLog } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import { readChain } from '../audit/read.js';
import type { Bus } from '../bus.js';
import { parseInput } from '../http/validate.js';

const iso = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)), z.iso.date().transform((s) => Date.parse(`${s}T00:00:00Z`))]);

/** A search of the backup log; `since`/`until` are ms or ISO dates/times (until exclusive). */
export const logQuery = z.strictObject({
  site: z.string().max(63).optional(),
  store: z.string().max(200).optional(),
  type: z.enum(jobKinds).optional(),
  person: z.string().max(200).optional(),
  result: z.enum(['ok', 'partial', 'failed']).optional(),
  since: iso.optional(),
  until: iso.optional(),
});
export type LogQuery = z.infer<typeof logQuery>;

export type LogBus = Pick<Bus, 'scanSubject'>;

/** Backup log entries of `sites` matching `q`, oldest first (by start). */
export async function searchLog(bus: LogBus, sites: string[], q: LogQuery): Promise<BackupLog[]> {
  const out: BackupLog[] = [];
  for (const site of q.site ? sites.filter((s) => s === q.site) : sites) {
    for await (const m of bus.scanSubject(streams.events.name, subjects.event(site, 'log'))) {
      let e: BackupLog;
      try {
        e = decode(m.data, 'mv.backup-log.v1');
      } catch {
        continue;
      }
      if (e.site !== parseEventSubject(m.subject)?.site) continue;
      if (matches(e, q)) out.push(e);
    }
  }
  return out.sort((a, b) => a.startedAt - b.startedAt || a.site.localeCompare(b.site));
}

export function matches(e: BackupLog, q: LogQuery): boolean {
  return (q.store === undefined || e.store === q.store) && (q.type === undefined || e.job === q.type)
    && (q.person === undefined || e.actor.id === q.person) && (q.result === undefined || e.result === q.result)
    && (q.since === undefined || e.startedAt >= q.since) && (q.until === undefined || e.startedAt < q.until);
}

/** Who is responsible for a run: the person, or the scheduler/agent that started it. */
export const responsible = (e: BackupLog) => (e.actor.kind === 'user' ? e.actor.id : `${e.actor.kind}:${e.actor.id}`);

export const LOG_CSV_HEADER = 'start,end,date,type,store,site,responsible person,result,files,bytes,errors';

/** One CSV cell: quoted when it holds a comma, quote or line break; a leading =+-@, tab, CR or LF is defused (OWASP). */
export function csvCell(v: string | number): string {
  const s = String(v);
  const defused = /^[=+\-@\t\r\n]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(defused) || defused !== s ? `"${defused.replace(/"/g, '""')}"` : defused;
}

/** The log as CSV (CRLF lines): errors are `code: message (path)` joined by '; '. */
export function logCsv(entries: BackupLog[]): string {
  const rows = entries.map((e) => [
    new Date(e.startedAt).toISOString(), new Date(e.endedAt).toISOString(), new Date(e.startedAt).toISOString().slice(0, 10),
    e.job, e.store, e.site, responsible(e), e.result, e.files, e.bytes,
    e.errors.map((x) => `${x.code}: ${x.message}${x.path ? ` (${x.path})` : ''}`).join('; '),
  ].map(csvCell).join(','));
  return `${[LOG_CSV_HEADER, ...rows].join('\r\n')}\r\n`;
}

export const reviewInput = z.strictObject({
  from: iso,
  to: iso,
  note: z.string().min(3, 'say what was reviewed and found').max(2000),
  site: z.string().max(63).optional(),
}).refine((r) => r.from < r.to, 'from must be before to');

export interface LogReview {
  by: string;
  at: number;
  from: number;
  to: number;
  note: string;
  site?: string;
  entries: number;
  failed: number;
}

/** Records a review of the log for a period (audited: the entry is the record), with what it covered. */
export async function recordReview(d: { bus: LogBus; audit: AuditSink; sites: string[] }, by: string, input: z.input<typeof reviewInput>): Promise<LogReview> {
  const r = parseInput(reviewInput, input, 'review');
  const entries = await searchLog(d.bus, d.sites, { since: r.from, until: r.to, ...(r.site ? { site: r.site } : {}) });
  const failed = entries.filter((e) => e.result !== 'ok').length;
  const detail = { from: r.from, to: r.to, note: r.note, entries: entries.length, failed, ...(r.site ? { site: r.site } : {}) };
  const e = await d.audit.record({ actor: { kind: 'user', id: by }, action: 'log.review', object: `backup-log:${r.site ?? 'all'}`, result: 'ok', detail });
  return { by, at: e.at, ...detail };
}

/** Every log review in the controller's audit chain, oldest first (optionally overlapping a period). */
export async function listReviews(bus: Pick<Bus, 'readSubject' | 'lastOnSubject'>, period?: { from: number; to: number }): Promise<LogReview[]> {
  const chain = await readChain(bus);
  const out: LogReview[] = [];
  for (const v of chain.values as Array<{ action?: string; at?: number; actor?: { id?: string }; detail?: Record<string, unknown> }>) {
    if (v?.action !== 'log.review' || typeof v.at !== 'number' || !v.detail) continue;
    const d = v.detail as Omit<LogReview, 'by' | 'at'>;
    if (period && (d.to <= period.from || d.from >= period.to)) continue;
    out.push({ by: String(v.actor?.id), at: v.at, from: d.from, to: d.to, note: d.note, entries: d.entries, failed: d.failed, ...(d.site ? { site: d.site } : {}) });
  }
  return out;
}
