/**
 * What a finished (or abandoned) restore means for the technician, pure: the exit code and one
 * line. Success is only `done` with every restored file verified and none failed. An order a
 * second technician rejected (four-eyes), or nobody approved in time, never ran: exit 7. What the
 * agent reported (reasons, failed paths) is printable(): the line is one line whatever it sent.
 */
import { formatBytes, formatCount, printable, progressPercent, progressWork } from '@medvault/protocol';

export interface OrderViewJson {
  id: string;
  state: string;
  final: boolean;
  reason?: { code: string; message: string };
  progress?: { files: number; bytes: number; totalFiles: number; totalBytes: number };
  result?: { snapshot: string; files: number; bytes: number; verified: number; failed: string[]; source?: 'local' | 'offsite' };
}

export const restoreExit = { ok: 0, error: 1, refused: 3, failed: 4, timeout: 5, unverified: 6, notApproved: 7 } as const;

export function restoreOutcome(v: OrderViewJson, timedOut: boolean): { exit: number; message: string } {
  if (!v.final) {
    return timedOut
      ? { exit: restoreExit.timeout, message: `order ${v.id}: still ${v.state} when the wait timed out (medvault order ${v.id} follows it on)` }
      : { exit: restoreExit.ok, message: v.state === 'awaiting-approval' ? `order ${v.id} awaits approval by a second technician (not waiting)` : `order ${v.id} ${v.state} (not waiting; follow it with medvault order ${v.id})` };
  }
  const why = v.reason ? printable(`${v.reason.code}: ${v.reason.message}`) : 'no reason given';
  if (v.state === 'refused') return { exit: restoreExit.refused, message: `order ${v.id} refused by the agent: ${why}` };
  if (v.state === 'failed') return { exit: restoreExit.failed, message: `order ${v.id} failed: ${why}` };
  if (v.state === 'rejected' || v.state === 'expired') return { exit: restoreExit.notApproved, message: `order ${v.id} ${printable(v.reason?.message ?? v.state)} (not run)` };
  const r = v.result;
  if (!r) return { exit: restoreExit.unverified, message: `order ${v.id} done but the agent reported no result` };
  if (r.failed.length > 0 || r.verified < r.files) {
    return { exit: restoreExit.unverified, message: `order ${v.id}: ${r.verified}/${formatCount(r.files, 'file')} verified, ${r.failed.length} failed (${r.failed.slice(0, 3).map((p) => printable(p)).join(', ')})` };
  }
  const from = r.source ? ` (${r.source === 'local' ? 'local' : 'off-site'} copy)` : '';
  return { exit: restoreExit.ok, message: `order ${v.id} done: ${formatCount(r.files, 'file')}, ${formatBytes(r.bytes)} restored and verified from snapshot ${r.snapshot.slice(0, 12)}${from}` };
}

/** A one-line text progress bar; an order not yet running says why it waits (e.g. for a backup of the store). */
export function progressBar(v: OrderViewJson, width = 30): string {
  const p = v.progress;
  // files weigh too, and 100% is only for a restore that is done (progressPercent)
  const pct = v.final && v.state === 'done' ? 100 : (p && progressPercent(progressWork(p.files, p.bytes), progressWork(p.totalFiles, p.totalBytes))) ?? 0;
  const n = Math.round((pct / 100) * width);
  // done: the result's count (progress is reported now and then, so its last report may be older)
  const r = v.final && v.state === 'done' ? v.result : undefined;
  const files = r ? ` ${r.files}/${formatCount(r.files, 'file')}` : p ? ` ${p.files}/${formatCount(p.totalFiles, 'file')}` : '';
  const why = !v.final && v.reason ? `: ${printable(v.reason.message)}` : '';
  return `[${'#'.repeat(n)}${'-'.repeat(width - n)}] ${pct}% ${v.state}${files}${why}`;
}
