/**
 * `medvault-agent doctor`: checks the appliance — configuration, keys, state folder, disks found
 * and which suit backups, each backup disk (writable, free space, SMART), record-store
 * permissions, the clock, NATS reachability and TLS — and prints each finding with its fix.
 * Exit 0 when nothing failed (warnings allowed), 1 otherwise, 2 when the configuration is invalid.
 */
import type { Command } from 'commander';
import { MedvaultError, codes, formatCount, formatIssue } from '@medvault/protocol';
import { checkConfig } from '../config.js';
import { diagnose } from '../doctor/doctor.js';
import { realHost } from '../doctor/host.js';
import type { CliContext } from './context.js';

const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

export function register(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('check disks, permissions, free space, SMART, clock, NATS and TLS, keys; each problem with its fix')
    .option('--user <name>', 'the service user the fixes name', 'medvault')
    .action(async (o: { user: string }) => {
      const { config, issues } = checkConfig(ctx.options.config);
      if (!config) throw new MedvaultError(codes.CONFIG_INVALID, issues.map(formatIssue).join('\n'));
      const findings = await diagnose(config, realHost, { user: o.user });
      const failed = findings.filter((f) => f.status === 'fail').length;
      const warned = findings.filter((f) => f.status === 'warn').length;
      if (failed > 0) ctx.status = 'failed';
      const lines = findings.map((f) => `${mark[f.status]} ${f.check} ${f.subject}: ${f.message}${f.fix ? `\n     fix: ${f.fix}` : ''}`);
      lines.push(`${formatCount(failed, 'problem')}, ${formatCount(warned, 'warning')}, ${findings.length - failed - warned} ok`);
      ctx.print(lines.join('\n'), { command: 'doctor', failed, warnings: warned, findings });
    });
}
