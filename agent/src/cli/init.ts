/** `medvault-agent init`: create a repository on every configured disk (idempotent). */
import type { Command } from 'commander';
import { createDiskRepository } from '../repo/disk.js';
import { errorMessage, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a repository on every configured disk (and the local key file if missing)')
    .action(async () => {
      const cfg = ctx.config();
      const repos: { disk: string; id?: string; created?: boolean; error?: string }[] = [];
      let firstError: unknown;
      for (const { path } of cfg.disks) {
        try {
          repos.push({ disk: path, ...(await createDiskRepository(path, cfg)) });
        } catch (err) {
          firstError ??= err;
          repos.push({ disk: path, error: errorMessage(err) });
        }
      }
      if (firstError) throw firstError;
      ctx.print(repos.map((r) => `${r.disk}: repository ${r.id} ${r.created ? 'created' : 'exists'}`).join('\n'), { command: 'init', repos });
    });
}
