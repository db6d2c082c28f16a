/** `medvault-agent restore <snapshot> --target DIR [--path P]... [--overwrite]`: restore and verify. */
import type { Command } from 'commander';
import { Restorer } from '../restore/restorer.js';
import { withSnapshotRepo, formatBytes, type CliContext } from './context.js';
import { progress } from './progress.js';
import { appendAudit } from '../audit/audit-log.js';
import { Spool } from '../replicate/spool.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('restore <snapshot>')
    .description("restore a snapshot ('latest' or a hash prefix) into a folder, then verify every file")
    .requiredOption('--target <dir>', 'folder to restore into')
    .option('--path <path>', 'a path inside the snapshot (repeatable); default: everything', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--store <name>', "with 'latest': the latest snapshot of this store")
    .option('--overwrite', 'replace existing files (default: refuse to overwrite)')
    .action(async (ref: string, opts: { target: string; path: string[]; store?: string; overwrite?: boolean }) => {
      const bar = progress(ctx);
      const { result, disk } = await withSnapshotRepo(ctx, ref, opts.store, async (repo, hash, disk) => ({
        disk,
        result: await new Restorer(repo).restore({
          snapshot: hash,
          paths: opts.path,
          target: opts.target,
          mode: opts.overwrite ? 'overwrite' : 'new',
          onProgress: (p) => bar.update(p.bytes, p.totalBytes, `${p.files}/${p.totalFiles} files`),
        }),
      }));
      bar.stop();
      // Audited on the appliance's chain (replicated with the next flush): who, what, which key.
      const cfg = ctx.config();
      const spool = new Spool(cfg.state_dir, cfg.site);
      appendAudit(cfg.state_dir, cfg.site, {
        actor: { kind: 'user', id: `os:${process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? 'unknown')}` },
        action: 'restore', object: `snapshot:${result.snapshot}`, result: result.failed.length === 0 ? 'ok' : 'failed',
        detail: { via: 'cli', disk, target: opts.target, mode: opts.overwrite ? 'overwrite' : 'new', files: result.files, verified: result.verified, failed: result.failed.length, key: ctx.options.recoveryKey ? 'recovery private key' : 'local key' },
      }, (e) => spool.add('audit', e, `audit.${e.seq}`));
      if (result.failed.length > 0) ctx.status = result.errors.some((e) => e.code === 'MV_ERR_DATA_CORRUPT' || e.code === 'MV_ERR_VERIFY_FAILED') ? 'damaged' : 'failed';
      const lines = [`restored snapshot ${result.snapshot.slice(0, 12)} from ${disk} into ${opts.target}: ${result.files} files, ${formatBytes(result.bytes)}, ${result.verified} verified`];
      for (const e of result.errors) lines.push(`  ${e.code === 'SKIPPED' ? 'skipped' : 'FAILED'}: ${e.path}: ${e.message}`);
      ctx.print(lines.join('\n'), { command: 'restore', disk, target: opts.target, ...result });
    });
}
