#!/usr/bin/env node
/**
 * medvault-agent: the composition root of the agent's CLI. Builds the commands, runs one, and is
 * the only place that maps outcomes and errors to exit codes:
 * 0 ok, 1 error, 2 usage or configuration, 3 partial backup, 4 repository locked, 5 data corrupt
 * or verification failed, 6 a backup disk failed (full, read-only, failing, unplugged or foreign:
 * alerted) while the other disks were written; 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { MedvaultError, codes, printable } from '@medvault/protocol';
import { createContext, type CliContext } from './cli/context.js';
import { runInterruptHooks } from './platform/on-interrupt.js';

type Register = (program: Command, ctx: CliContext) => void;

/**
 * Each command's module by command name, in help order. Only the module of the command being run
 * is loaded (all of them for help or an unknown name): a backup or restore does not pay for the
 * daemon's, the drill's or the doctor's imports, ~0.4 s of CPU at every start. Each import names
 * its module literally, so the bundle (agent/bundle.mjs) makes each command a chunk of its own.
 * ── commands owned by others are added here, one line each.
 */
const commands: [names: string[], load: () => Promise<{ register: Register }>][] = [
  [['init'], () => import('./cli/init.js')],
  [['backup'], () => import('./cli/backup.js')],
  [['snapshots'], () => import('./cli/snapshots.js')],
  [['ls'], () => import('./cli/ls.js')],
  [['restore'], () => import('./cli/restore.js')],
  [['check'], () => import('./cli/check.js')],
  [['forget', 'prune'], () => import('./cli/forget.js')],
  [['recovery-key'], () => import('./cli/recovery-key.js')],
  [['run'], () => import('./cli/run.js')],
  [['restore-db'], () => import('./cli/restore-db.js')],
  [['status'], () => import('./cli/status.js')],
  [['suspect'], () => import('./cli/suspect.js')],
  [['audit'], () => import('./audit/command.js')],
  [['config'], () => import('./cli/config-check.js')],
  [['doctor'], () => import('./cli/doctor.js')],
  [['rebuild'], () => import('./cli/rebuild.js')],
  [['drill'], () => import('./cli/drill.js')],
];

/** The command `argv` names: its first operand after the global options (and their values). */
function commandOf(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '--recovery-key') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export const exitCodes = { ok: 0, error: 1, usage: 2, partial: 3, locked: 4, corrupt: 5, disk: 6 } as const;

/** The program with every command, or with only the one `argv` names when it is a known command. */
export async function buildProgram(ctx: CliContext, argv: string[] = []): Promise<Command> {
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
  const name = commandOf(argv);
  const one = commands.filter(([names]) => name !== undefined && names.includes(name));
  for (const [, load] of one.length > 0 ? one : commands) (await load()).register(program, ctx);
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

/**
 * Ctrl-C or a stop during a one-shot command (`run`, the daemon, stops itself cleanly on these):
 * what the command was writing is left as a kill would leave it, which the repository is made for
 * (no snapshot is committed half-way; the next run sweeps or reuses what was written and takes
 * over the lock of a process that is gone), but its interrupt hooks run (platform/on-interrupt.ts:
 * a progress bar gives the terminal its cursor back, a restore removes its partial temp files), the
 * user gets a line saying what happened and what to do, and the exit code is the shell's for the signal.
 */
function exitOnSignal(command: string | undefined, json: boolean): void {
  for (const [signal, exit] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      runInterruptHooks();
      const message = interruptedMessage(command, signal);
      if (json) process.stdout.write(`${JSON.stringify({ ok: false, code: codes.INTERRUPTED, message })}\n`);
      else process.stderr.write(`medvault-agent: ${message}\n`);
      process.exit(exit);
    });
  }
}

/**
 * What the user reads when a signal stops `command`, and what to do. The commands that write
 * outside the repository cannot simply be run again: a restore into the same folder refuses the
 * files it placed (mode 'new'), and restore-db never loads into a database that exists, as the one
 * it created does (partly loaded).
 */
export function interruptedMessage(command: string | undefined, signal: string): string {
  const next =
    command === 'restore' ? 'the files it placed are whole and verified; restore again with --overwrite, or into an empty folder'
    : command === 'restore-db' ? 'the database it created may hold part of the dump: drop it (dropdb, or DROP DATABASE), or load into another --database'
    : 'nothing it left half-done is used; run it again to finish';
  return `${command ?? 'command'} interrupted by ${signal} before it ended: ${next}`;
}

export async function main(argv: string[]): Promise<number> {
  const ctx = createContext(process.env.MEDVAULT_CONFIG ?? '/etc/medvault/agent.toml');
  ctx.options.json = argv.includes('--json');
  try {
    await (await buildProgram(ctx, argv)).parseAsync(argv);
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
    else process.stderr.write(`medvault-agent: ${printable(message, '\n')}\n`); // a message may quote a file name
    return code;
  }
}

const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  const command = commandOf(process.argv);
  if (command !== 'run') exitOnSignal(command, process.argv.includes('--json'));
  main(process.argv).then((code) => process.exit(code));
}
