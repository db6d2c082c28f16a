#!/usr/bin/env node
/**
 * medvault-agent: the composition root of the agent's CLI. Builds the commands, runs one, and is
 * the only place that maps outcomes and errors to exit codes:
 * 0 ok, 1 error, 2 usage or configuration, 3 partial backup, 4 repository locked, 5 data corrupt
 * or verification failed, 6 a backup disk failed (full, read-only, failing, unplugged or foreign:
 * alerted) while the other disks were written.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import { createContext, type CliContext } from './cli/context.js';
import { register as registerInit } from './cli/init.js';
import { register as registerBackup } from './cli/backup.js';
import { register as registerSnapshots } from './cli/snapshots.js';
import { register as registerLs } from './cli/ls.js';
import { register as registerRestore } from './cli/restore.js';
import { register as registerCheck } from './cli/check.js';
import { register as registerRecoveryKey } from './cli/recovery-key.js';
import { register as registerForget } from './cli/forget.js';
// ── commands owned by others register here, one line each, e.g.:
import { register as registerRun } from './cli/run.js';
import { register as registerRestoreDb } from './cli/restore-db.js';
import { register as registerStatus } from './cli/status.js';
import { register as registerSuspect } from './cli/suspect.js';
import { register as registerAudit } from './audit/command.js';
import { register as registerConfigCheck } from './cli/config-check.js';
import { register as registerDoctor } from './cli/doctor.js';
import { register as registerRebuild } from './cli/rebuild.js';
import { register as registerDrill } from './cli/drill.js';

export const exitCodes = { ok: 0, error: 1, usage: 2, partial: 3, locked: 4, corrupt: 5, disk: 6 } as const;

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('medvault-agent')
    .description('medvault agent: encrypted, deduplicated backups of clinic record stores')
    .option('--config <file>', 'agent configuration', ctx.options.config)
    .option('--json', 'machine output: one JSON object per command on stdout')
    .option('--recovery-key <file>', 'open repositories with the recovery private key instead of the local key')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .hook('preAction', (cmd) => {
      const o = cmd.opts<{ config: string; json?: boolean; recoveryKey?: string }>();
      ctx.options = { config: o.config, json: o.json ?? false, ...(o.recoveryKey ? { recoveryKey: o.recoveryKey } : {}) };
    });
  for (const register of [registerInit, registerBackup, registerSnapshots, registerLs, registerRestore, registerCheck, registerForget, registerRecoveryKey]) register(program, ctx);
  registerRun(program, ctx);
  registerRestoreDb(program, ctx);
  registerStatus(program, ctx);
  registerSuspect(program, ctx);
  registerAudit(program, ctx);
  registerConfigCheck(program, ctx);
  registerDoctor(program, ctx);
  registerRebuild(program, ctx);
  registerDrill(program, ctx);
  return program;
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
  if (err instanceof MedvaultError) {
    if (err.code === codes.CONFIG_INVALID || err.code === codes.MESSAGE_INVALID) return exitCodes.usage;
    if (err.code === codes.REPO_LOCKED) return exitCodes.locked;
    if (err.code === codes.DATA_CORRUPT || err.code === codes.VERIFY_FAILED) return exitCodes.corrupt;
  }
  return exitCodes.error;
}

const statusCodes = { ok: exitCodes.ok, partial: exitCodes.partial, damaged: exitCodes.corrupt, failed: exitCodes.error, 'disk-failed': exitCodes.disk } as const;

export async function main(argv: string[]): Promise<number> {
  const ctx = createContext(process.env.MEDVAULT_CONFIG ?? '/etc/medvault/agent.toml');
  ctx.options.json = argv.includes('--json');
  try {
    await buildProgram(ctx).parseAsync(argv);
    return statusCodes[ctx.status];
  } catch (err) {
    const code = exitCodeOf(err);
    if (err instanceof CommanderError) {
      if (code !== exitCodes.ok && ctx.options.json) process.stdout.write(`${JSON.stringify({ ok: false, code: 'MV_ERR_USAGE', message: err.message })}\n`);
      return code;
    }
    const errCode = err instanceof MedvaultError ? err.code : ((err as NodeJS.ErrnoException)?.code ?? 'ERROR');
    const message = (err as Error)?.message ?? String(err);
    if (ctx.options.json) process.stdout.write(`${JSON.stringify({ ok: false, code: errCode, message })}\n`);
    else process.stderr.write(`medvault-agent: ${message}\n`);
    return code;
  }
}

const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  main(process.argv).then((code) => process.exit(code));
}
