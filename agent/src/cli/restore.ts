/**
 * `medvault-agent restore <snapshot> --target DIR [--path P]... [--overwrite] [--from local|offsite|auto]`:
 * restore and verify, from the configured disks (default), the off-site copy, or auto (restore-source.ts).
 */
import type { Command } from 'commander';
import { MedvaultError, codes, printable, repeatable, unsafeSnapshotPath } from '@medvault/protocol';
import { Restorer, type RestoreOptions, type RestoreResult } from '../restore/restorer.js';
import { NOT_OVERWRITTEN } from '../restore/file-writer.js';
import type { Repository } from '../repo/repository.js';
import { readRecoveryKey } from '../repo/disk.js';
import { readLocalKey } from '../crypto/local-key.js';
import { openOffsiteRepository, restoreFrom, siteLink, type RestoreSource } from '../offsite/restore-source.js';
import { withSnapshotRepo, formatBytes, formatCount, progressWork, type CliContext } from './context.js';
import { progress } from './progress.js';
import { appendAudit } from '../audit/audit-log.js';
import { Spool } from '../replicate/spool.js';

/** How many of the names a restore left because they exist are listed one by one. */
const KEPT_SHOWN = 10;

export function register(program: Command, ctx: CliContext): void {
  program
    .command('restore <snapshot>')
    .description("restore a snapshot ('latest' or a hash prefix) into a folder, then verify every file")
    .requiredOption('--target <dir>', 'folder to restore into')
    .option('--path <path>', 'a path inside the snapshot (repeatable); default: everything', repeatable, [] as string[])
    .option('--store <name>', "with 'latest': the latest snapshot of this store")
    .option('--overwrite', 'replace existing files (default: refuse to overwrite)')
    .option('--from <source>', 'local (the configured disks), offsite (the controller\'s copy) or auto (local when whole, else off site)', 'local')
    .action(async (ref: string, opts: { target: string; path: string[]; store?: string; overwrite?: boolean; from: string }) => {
      if (!['local', 'offsite', 'auto'].includes(opts.from)) throw new MedvaultError(codes.CONFIG_INVALID, `--from ${opts.from}: expected local, offsite or auto`);
      const badPath = unsafeSnapshotPath(opts.path);
      if (badPath) throw new MedvaultError(codes.CONFIG_INVALID, `--path: ${badPath}`);
      const bar = progress(ctx);
      const options = (snapshot: string): RestoreOptions => ({
        snapshot,
        paths: opts.path,
        target: opts.target,
        mode: opts.overwrite ? 'overwrite' : 'new',
        ...(opts.store ? { store: opts.store } : {}),
        onProgress: (p) => bar.update(progressWork(p.files, p.bytes), progressWork(p.totalFiles, p.totalBytes), `${p.files}/${formatCount(p.totalFiles, 'file')}`),
      });
      const { result, disk } = opts.from === 'local'
        ? await withSnapshotRepo(ctx, ref, opts.store, async (repo, hash, disk) => ({ disk, result: await new Restorer(repo).restore(options(hash)) }))
        : await restoreElsewhere(ctx, opts.from as RestoreSource, options(ref));
      if (result.failed.length === 0) bar.done();
      else bar.stop();
      // Audited on the appliance's chain (replicated with the next flush): who, what, which key.
      const cfg = ctx.config();
      const spool = new Spool(cfg.state_dir, cfg.site);
      appendAudit(cfg.state_dir, cfg.site, {
        actor: { kind: 'user', id: `os:${process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? 'unknown')}` },
        action: 'restore', object: `snapshot:${result.snapshot}`, result: result.failed.length === 0 ? 'ok' : 'failed',
        detail: { via: 'cli', disk, target: opts.target, mode: opts.overwrite ? 'overwrite' : 'new', files: result.files, verified: result.verified, failed: result.failed.length, key: ctx.options.recoveryKey ? 'recovery private key' : 'local key' },
      }, (e, id) => spool.add('audit', e, id));
      if (result.failed.length > 0) ctx.status = result.errors.some((e) => e.code === 'MV_ERR_DATA_CORRUPT' || e.code === 'MV_ERR_VERIFY_FAILED') ? 'damaged' : 'failed';
      const lines = [`restored snapshot ${result.snapshot.slice(0, 12)} from ${disk} into ${opts.target}: ${formatCount(result.files, 'file')}, ${formatBytes(result.bytes)}, ${result.verified} verified`];
      // most messages name their path already (`a/b: exists in the target; …`); of the names left
      // because they exist (a restore run again: every file), the first few, then how many more
      let kept = 0;
      for (const e of [...result.errors].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
        if (e.message.endsWith(NOT_OVERWRITTEN) && ++kept > KEPT_SHOWN) continue;
        lines.push(`  ${e.code === 'SKIPPED' ? 'skipped' : 'FAILED'}: ${e.message.startsWith(`${e.path}: `) ? '' : `${e.path}: `}${e.message}`);
      }
      if (kept > KEPT_SHOWN) lines.push(`  ... and ${kept - KEPT_SHOWN} more that ${kept - KEPT_SHOWN === 1 ? 'exists' : 'exist'} in the target (--json lists them all)`);
      if (kept > 0) lines.push(`${kept} of the snapshot's entries already ${kept === 1 ? 'exists' : 'exist'} in ${opts.target} and ${kept === 1 ? 'was left as it is' : 'were left as they are'}: restore into an empty folder, or add --overwrite to replace them`);
      ctx.print(lines.join('\n'), { command: 'restore', disk, target: opts.target, ...result });
    });
}

/** Restore from the off-site copy, or auto: the first disk when it has the snapshot whole. */
async function restoreElsewhere(ctx: CliContext, from: RestoreSource, o: RestoreOptions): Promise<{ result: RestoreResult; disk: string }> {
  const cfg = ctx.config();
  const unlock = ctx.options.recoveryKey ? await readRecoveryKey(ctx.options.recoveryKey) : { localKey: await readLocalKey(cfg.key_file) };
  const link = await siteLink(cfg, 'restore');
  const first = cfg.disks[0]!.path;
  let local: Repository | undefined;
  try {
    const result = await restoreFrom(from, o, {
      local: async () => (local = await ctx.openRepo(first)),
      offsite: () => openOffsiteRepository(link, cfg.site, local?.id, unlock),
    }, (m, f) => process.stderr.write(`medvault-agent: ${printable(`${m} (${String(f.reason)})`, '\n')}\n`));
    return { result, disk: result.source === 'local' ? first : `off site (${result.fallback ?? 'as asked'})` };
  } finally {
    await local?.close();
    await link.close();
  }
}
