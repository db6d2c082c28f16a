/**
 * `medvault-agent config check`: validates the configuration before anything runs (systemd's
 * ExecStartPre): every mistake with its file, line, key and what was expected; exit 2 if any.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { MedvaultError, codes, formatCount, formatIssue } from '@medvault/protocol';
import { checkConfig } from '../config.js';
import type { CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('the agent configuration');
  config
    .command('check')
    .description('validate the configuration file: every mistake with file, line, key and what was expected (exit 2)')
    .action(() => {
      const file = ctx.options.config;
      const { config: c, issues } = checkConfig(file);
      if (!c) throw new MedvaultError(codes.CONFIG_INVALID, issues.map(formatIssue).join('\n'));
      // said, not failed: a share not mounted yet at boot must not stop the daemon (this runs as its ExecStartPre); each backup reports it too
      const warnings = c.stores.flatMap((s) => (s.type === 'files' && !existsSync(s.path) ? [`store ${s.name}: ${s.path} does not exist (not mounted yet? a typo?); medvault-agent doctor checks the machine`] : []));
      const text = `${file}: OK: site ${c.site}, ${formatCount(c.stores.length, 'store')}, ${formatCount(c.disks.length, 'disk')}${c.nats ? `, NATS ${c.nats.servers.join(',')}` : ''}`;
      ctx.print([text, ...warnings.map((w) => `warning: ${w}`)].join('\n'), {
        command: 'config check', file, site: c.site, stores: c.stores.map((s) => s.name), disks: c.disks.map((d) => d.path), warnings,
      });
    });
}
