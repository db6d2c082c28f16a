/**
 * The drill report (SOP 5.4 "documented"): the figures of one mv.drill-result.v1 — files, bytes,
 * RTO and RPO measured against their targets, per source, every failed file — as a report document
 * (reports/render.ts), signed by the controller and rendered as JSON, HTML or PDF.
 */
import type { DrillResult, SigningKey } from '@medvault/protocol';
import { renderReport, signReport, type Report, type ReportFormat, type ReportInput, type ReportSection } from '../reports/render.js';

const iso = (t: number) => new Date(t).toISOString();
const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB (${n} bytes)`;

/** The report document of one drill result (pure: a function of the result and `generatedAt`). */
export function drillReport(r: DrillResult, generatedAt: number): ReportInput {
  const pass = r.result === 'passed';
  const summary: ReportSection = {
    heading: 'Summary',
    mark: pass ? 'pass' : 'fail',
    facts: [
      { label: 'Result', value: pass ? 'PASSED' : 'FAILED', mark: pass ? 'pass' : 'fail' },
      { label: 'Site', value: r.site },
      { label: 'Store', value: r.store },
      { label: 'Drill id', value: r.drillId },
      { label: 'Requested by', value: `${r.requestedBy.kind}:${r.requestedBy.id}` },
      { label: 'Snapshot', value: r.snapshot ?? '(none found)' },
      ...(r.snapshotTime !== undefined ? [{ label: 'Snapshot time', value: iso(r.snapshotTime) }] : []),
      { label: 'Sample', value: r.sample === 1 ? 'all files (1)' : `${r.sample} of the files (seeded by the drill id)` },
      { label: 'Started', value: iso(r.startedAt) },
      { label: 'Ended', value: iso(r.endedAt) },
      { label: 'RPO measured (s)', value: r.rpoS ?? 'unknown', mark: r.met.rpo ? 'pass' : 'fail' },
      { label: 'RPO target (s)', value: r.targets.rpoS },
      { label: 'RTO measured (s)', value: r.runs.length ? Math.max(...r.runs.map((x) => x.rtoS)) : 'unknown', mark: r.met.rto ? 'pass' : 'fail' },
      { label: 'RTO target (s)', value: r.targets.rtoS },
    ],
    paragraphs: r.error ? [`${r.error.code}: ${r.error.message}`] : [],
  };
  const runs: ReportSection = {
    heading: 'Restores per source',
    tables: [{
      columns: ['source', 'result', 'files', 'bytes', 'verified', 'failed', 'RTO (s)', 'started', 'database'],
      rows: r.runs.map((x) => ({
        cells: [x.source, x.result, x.files, x.bytes, x.verified, x.failed.length, x.rtoS, iso(x.startedAt), x.database ? `${x.database.name}: ${x.database.tables} tables, ${x.database.rows} rows` : '-'],
        mark: x.result === 'passed' ? 'pass' : 'fail',
      })),
    }],
    facts: r.runs.map((x) => ({ label: `${x.source}: restored`, value: `${x.files} files, ${mib(x.bytes)}` })),
    paragraphs: r.runs.flatMap((x) => (x.error ? [`${x.source}: ${x.error.code}: ${x.error.message}`] : [])),
  };
  const failed = r.runs.flatMap((x) => x.failed.map((f) => ({ cells: [x.source, f.path, f.reason], mark: 'fail' as const })));
  return {
    type: 'mv.report.v1', kind: 'drill', title: `Disaster-recovery drill: ${r.site} / ${r.store}`,
    subjects: [r.drillId, r.site, ...(r.snapshot ? [r.snapshot] : [])], period: { from: r.startedAt, to: r.endedAt },
    generatedAt, generatedBy: 'medvault-controller', mark: pass ? 'pass' : 'fail',
    sections: [summary, runs, ...(failed.length ? [{ heading: 'Files that failed', mark: 'fail' as const, tables: [{ columns: ['source', 'path', 'reason'], rows: failed }] }] : [])],
  };
}

/** The signed report, rendered; `generatedAt` is the result's end so the same drill gives the same bytes. */
export async function renderDrillReport(r: DrillResult, key: SigningKey, format: ReportFormat): Promise<{ report: Report; bytes: Buffer }> {
  const report = signReport(drillReport(r, r.endedAt), key);
  return { report, bytes: await renderReport(report, format) };
}
