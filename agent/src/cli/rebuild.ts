/**
 * `medvault-agent rebuild --recovery-key FILE [--repo ID]`: on a replacement appliance (enrolled
 * anew for the same site), copy the lost appliance's repository from the off-site copy onto the
 * first configured disk, sealed to this appliance's new local key (offsite/rebuild.ts), and record
 * the disk as this agent's. Afterwards restore the record stores and start the daemon as usual.
 */
import type { Command } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import { DirStore } from '../store/dir-store.js';
import { createLocalKey } from '../crypto/local-key.js';
import { openDiskRepository, readRecoveryKey } from '../repo/disk.js';
import { checkRebuildFolder, rebuildFromOffsite } from '../offsite/rebuild.js';
import { openOffsiteRepository, siteLink } from '../offsite/restore-source.js';
import { appendAudit } from '../audit/audit-log.js';
import { Spool } from '../replicate/spool.js';
import { progress } from './progress.js';
import { formatBytes, formatCount, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('rebuild')
    .description("replacement appliance: copy the site's repository from the off-site copy onto the first disk (needs the global --recovery-key FILE)")
    .option('--repo <id>', 'the repository to rebuild when the site has several off site')
    .action(async (opts: { repo?: string }) => {
      const cfg = ctx.config();
      if (!ctx.options.recoveryKey) throw new MedvaultError(codes.CONFIG_INVALID, "rebuild needs --recovery-key FILE: the organisation's recovery private key (kept offline by IT)");
      const unlock = (await readRecoveryKey(ctx.options.recoveryKey)) as { recoveryPrivateKey: string };
      const disk = cfg.disks[0]!.path;
      await checkRebuildFolder(disk);
      const link = await siteLink(cfg, 'rebuild');
      const bar = progress(ctx);
      let r;
      try {
        // The recovery key opens the off-site copy before the local key or a folder is created.
        await (await openOffsiteRepository(link, cfg.site, opts.repo, unlock)).close();
        const localKey = await createLocalKey(cfg.key_file);
        const store = new DirStore(disk);
        await store.init();
        r = await rebuildFromOffsite({
          link, site: cfg.site, ...(opts.repo ? { repo: opts.repo } : {}), recoveryPrivateKey: unlock.recoveryPrivateKey, recoveryPublicKey: cfg.recovery_public_key,
          localKey, disk: store, label: disk, onObject: (n, bytes) => bar.update(bytes, undefined, `${formatCount(n, 'object')}, ${formatBytes(bytes)}`), // the objects off site are not counted first
        });
      } finally {
        bar.stop();
        await link.close();
      }
      await (await openDiskRepository(disk, cfg)).close(); // records the disk as this agent's, builds the catalog
      const spool = new Spool(cfg.state_dir, cfg.site);
      appendAudit(cfg.state_dir, cfg.site, {
        actor: { kind: 'user', id: `os:${process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? 'unknown')}` },
        action: 'repository.rebuild', object: `repo:${r.repo}`, result: r.failed.length === 0 ? 'ok' : 'failed',
        detail: { disk, copied: r.copied, bytes: r.bytes, present: r.present, failed: r.failed.length, keyFile: r.keyFile, key: 'recovery private key' },
      }, (e, id) => spool.add('audit', e, id));
      if (r.failed.length > 0) ctx.status = 'damaged';
      const rate = r.ms > 0 ? `${formatBytes((r.bytes / r.ms) * 1000)}/s` : '';
      const lines = [`rebuilt repository ${r.repo} on ${disk} from the off-site copy: ${formatCount(r.copied, 'object')}, ${formatBytes(r.bytes)} in ${(r.ms / 1000).toFixed(1)} s ${rate}${r.present ? `, ${r.present} already there` : ''}; key file ${r.keyFile.slice(0, 12)} for this appliance's local key`];
      for (const f of r.failed) lines.push(`  NOT COPIED ${f.kind} ${f.name}: ${f.problem}`);
      lines.push('next: medvault-agent restore latest --target <record store folder>, then start the agent');
      ctx.print(lines.join('\n'), { command: 'rebuild', disk, ...r });
    });
}
