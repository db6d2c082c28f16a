/** `medvault-agent init`: create a repository on every configured disk (idempotent). */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createDiskRepository } from '../repo/disk.js';
import { MedvaultError, codes } from '@medvault/protocol';
import { errorMessage, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a repository on every configured disk (and the local key file if missing)')
    .option('--replace-disk <path>', 'a configured disk replaced by a new one (failed, lost, rotated out): take the repository made or found on it as the disk\'s from now on')
    .action(async (o: { replaceDisk?: string }) => {
      const cfg = ctx.config();
      // the configured disk the path names: as a shell's completion types it (a trailing slash) or relative to here
      const replace = o.replaceDisk === undefined ? undefined : cfg.disks.find((d) => resolve(d.path) === resolve(o.replaceDisk!))?.path;
      if (o.replaceDisk !== undefined && replace === undefined) throw new MedvaultError(codes.CONFIG_INVALID, `--replace-disk ${o.replaceDisk}: not a configured disk (${cfg.disks.map((d) => d.path).join(', ')})`);
      const repos: { disk: string; id?: string; created?: boolean; replaced?: string; error?: string }[] = [];
      let firstError: unknown;
      for (const { path } of cfg.disks) {
        try {
          repos.push({ disk: path, ...(await createDiskRepository(path, cfg, path === replace)) });
        } catch (err) {
          firstError ??= err;
          repos.push({ disk: path, error: errorMessage(err) });
        }
      }
      if (firstError) throw firstError;
      ctx.print(repos.map((r) => `${r.disk}: repository ${r.id} ${r.created ? 'created' : 'exists'}${r.replaced ? `; it replaces repository ${r.replaced} (the disk used here before): the next backup to it is a full one` : ''}`).join('\n'), { command: 'init', repos });
    });
}
