/** The SOP 5.1 backup-log entry (mv.backup-log.v1) for one backup run on one disk. */
import { randomUUID } from 'node:crypto';
import { validate, type BackupLog } from '@medvault/protocol';
import type { BackupResult } from './archiver.js';

export function backupLogEntry(o: {
  site: string;
  store: string;
  job: BackupLog['job'];
  actor: BackupLog['actor'];
  startedAt: number;
  endedAt: number;
  result?: BackupResult;
  error?: { code: string; message: string };
}): BackupLog {
  const r = o.result;
  return validate(
    {
      type: 'mv.backup-log.v1',
      site: o.site,
      jobId: randomUUID(),
      job: r?.job ?? o.job,
      store: o.store,
      actor: o.actor,
      startedAt: o.startedAt,
      endedAt: o.endedAt,
      result: o.error ? 'failed' : r?.partial ? 'partial' : 'ok',
      files: r?.summary.files ?? 0,
      bytes: r?.summary.bytes ?? 0,
      ...(r ? { repo: r.repo, snapshot: r.snapshot } : {}),
      errors: [
        ...(o.error ? [{ code: o.error.code.slice(0, 64), message: o.error.message.slice(0, 2000) }] : []),
        ...(r?.errors ?? []).map((e) => ({ code: 'MV_ERR_STORAGE_FAILED', message: e.message.slice(0, 2000), path: e.path.slice(0, 8192) })),
      ].slice(0, 1000),
    },
    'mv.backup-log.v1',
  );
}
