/** `medvault-agent backup <store> [--full]`: back up one record store to every disk's repository. */
import type { Command } from 'commander';
import { MAX_TAGS, MAX_TAG_LENGTH, MedvaultError, codes, printable, repeatable } from '@medvault/protocol';
import type { BackupResult } from '../backup/archiver.js';
import { backupStoreTo, ranAs } from '../jobs/backup-job.js';
import { noteRun } from '../jobs/run-book.js';
import { inspectSnapshot } from '../jobs/suspicion.js';
import { Alerts, DISK_OK } from '../daemon/alerts.js';
import { eachRepo, errorMessage, formatBytes, formatCount, progressWork, type CliContext } from './context.js';
import { progress } from './progress.js';
import { backupLogEntry } from '../backup/log-entry.js';
import { Spool } from '../replicate/spool.js';
import { diskProblem } from '../repo/disk.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('backup <store>')
    .description('back up a record store to every configured disk (exit 3 when partial)')
    .option('--full', 'reread and rehash every file instead of trusting unchanged metadata')
    .option('--tag <tag>', 'tag the snapshot (repeatable); legal-hold puts it on legal hold', repeatable, [] as string[])
    .action(async (storeName: string, opts: { full?: boolean; tag: string[] }) => {
      const cfg = ctx.config();
      const store = cfg.stores.find((s) => s.name === storeName);
      if (!store) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: no store named ${storeName} (have: ${cfg.stores.map((s) => s.name).join(', ')})`);
      // before anything is read: a snapshot's tag goes off site in its needs list (and into the snapshots table)
      const badTag = opts.tag.find((t) => t.length === 0 || t.length > MAX_TAG_LENGTH || /\p{Cc}/u.test(t));
      if (badTag !== undefined) throw new MedvaultError(codes.CONFIG_INVALID, `--tag ${JSON.stringify(badTag)}: a tag is 1-${MAX_TAG_LENGTH} characters, without control characters (line breaks, tabs)`);
      if (opts.tag.length > MAX_TAGS) throw new MedvaultError(codes.CONFIG_INVALID, `--tag given ${opts.tag.length} times: a snapshot takes at most ${MAX_TAGS} tags`);
      const bar = progress(ctx);
      const job = opts.full ? 'full' : 'incremental';
      const actor = { kind: 'user' as const, id: process.env.SUDO_USER ?? process.env.USER ?? 'cli' };
      const spool = new Spool(cfg.state_dir, cfg.site);
      const runStartedAt = Date.now();
      const logError = (disk: string, err: unknown, startedAt: number) => {
        const error = { code: err instanceof MedvaultError ? err.code : 'MV_ERR_STORAGE_FAILED', message: `${disk}: ${errorMessage(err)}` };
        spool.add('log', backupLogEntry({ site: cfg.site, store: store.name, job, actor, startedAt, endedAt: Date.now(), error }));
      };
      /** Disks whose repository opened: each logs its own run. */
      const opened = new Set<string>();
      const runs = await eachRepo(ctx, async (repo, disk) => {
        opened.add(disk);
        const startedAt = Date.now();
        try {
          // the bar's total: as much as the store's last snapshot on this disk held (none: unknown)
          const last = bar.shown ? (await repo.snapshots()).filter((s) => s.store === store.name).at(-1)?.summary : undefined;
          const expected = last && progressWork(last.files, last.bytes);
          const result = await backupStoreTo(repo, store, {
            job,
            actor,
            tags: opts.tag,
            ...(bar.shown ? { onProgress: (p: { files: number; bytes: number }) => bar.update(progressWork(p.files, p.bytes), expected, `${disk}: ${last ? `${p.files} of ~${formatCount(last.files, 'file')}` : formatCount(p.files, 'file')}, ${formatBytes(p.bytes)}`) } : {}),
          });
          spool.add('log', backupLogEntry({ site: cfg.site, store: store.name, job, actor, startedAt, endedAt: Date.now(), result }));
          if (store.type === 'files' && disk === cfg.disks[0]!.path) {
            const alerts = new Alerts({ site: cfg.site, send: (a) => spool.add('alert', a), now: Date.now });
            const v = await inspectSnapshot(repo, result.snapshot, { store: store.name, stateDir: cfg.state_dir, alerts, now: Date.now, ...(result.changes ? { changes: result.changes } : {}) });
            if (v.suspect) process.stderr.write(`medvault-agent: WARNING: snapshot ${result.snapshot.slice(0, 12)} looks like ransomware: ${v.reasons.join('; ')}; last snapshot before the change: ${v.lastGood}\n`);
          }
          return result;
        } catch (err) {
          logError(disk, err, startedAt);
          throw err;
        }
      });
      // a disk that could not be opened (unplugged, foreign, empty) is a failed run in the backup log too, not a gap
      for (const r of runs) if (r.error && !opened.has(r.disk)) logError(r.disk, r.error, runStartedAt);
      const done = runs.flatMap((r) => (r.value ? [r.value] : []));
      if (done.length > 0) noteRun(cfg.state_dir, store.name, ranAs(job, done), runStartedAt);
      // a disk that failed stops only itself: alert, and the other disks' snapshots stand; a disk
      // written resolves what an earlier run (or the daemon) raised about it
      const diskAlerts = new Alerts({ site: cfg.site, send: (a) => spool.add('alert', a), now: Date.now });
      for (const r of runs) {
        const p = r.error ? diskProblem(r.error) : undefined;
        if (p) diskAlerts.raise({ key: `disk:${r.disk}`, code: p.code, severity: 'critical', message: `${r.disk}: backup of ${storeName} stopped: ${p.what}: ${errorMessage(r.error)}`, store: store.name });
        if (r.value) diskAlerts.resolve(`disk:${r.disk}`, `${r.disk}: backed up ${storeName} again`, DISK_OK);
      }
      const failed = runs.filter((r) => r.error);
      if (failed.length === 0) bar.done();
      else bar.stop();
      const partial = runs.some((r) => r.value?.partial);
      if (partial) ctx.status = 'partial';
      const lines = runs.map((r) => (r.error ? `${r.disk}: FAILED: ${errorMessage(r.error)}` : line(r.disk, r.value!)));
      for (const r of runs) for (const e of r.value?.errors ?? []) lines.push(`  unreadable: ${e.path}: ${e.message}`);
      for (const r of runs) for (const c of r.value?.changed ?? []) lines.push(`  changed while read: ${c}`);
      if (failed.length > 0 && failed.length < runs.length) {
        ctx.status = 'disk-failed';
        for (const f of failed) lines.push(`  alert ${diskProblem(f.error)?.code ?? 'backup-failed'}: ${f.disk}`);
      } else if (failed.length > 0) {
        ctx.status = 'failed';
        process.stdout.write(ctx.options.json ? '' : `${printable(lines.join('\n'), '\n')}\n`);
        const first = failed[0]!.error;
        const msg = `backup of ${storeName} failed on ${failed.map((f) => f.disk).join(', ')}: ${errorMessage(first)}`;
        throw first instanceof MedvaultError ? new MedvaultError(first.code, msg, { cause: first }) : new Error(msg, { cause: first });
      }
      ctx.print(lines.join('\n'), {
        command: 'backup',
        store: storeName,
        partial,
        results: runs.map((r) => (r.error ? { disk: r.disk, ok: false, code: (r.error as MedvaultError).code ?? 'ERROR', alert: diskProblem(r.error)?.code, message: errorMessage(r.error) } : { disk: r.disk, ...r.value!, written: r.value!.written.length })),
      });
    });
}

function line(disk: string, r: BackupResult): string {
  const s = r.summary;
  return `${disk}: ${r.job} snapshot ${r.snapshot.slice(0, 12)}${r.partial ? ' PARTIAL' : ''}: ${formatCount(s.files, 'file')}, ${formatCount(s.dirs, 'folder')}, ${formatBytes(s.bytes)} (new ${formatBytes(s.newBytes)}, stored ${formatBytes(s.storedBytes)}) in ${(r.durationMs / 1000).toFixed(1)} s`;
}
