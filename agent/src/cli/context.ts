/**
 * cli/: the agent's commands, one file each, each exporting `register(program, ctx)`. Commands
 * print through the context (human text, or one JSON object with --json) and report their outcome
 * in `ctx.status`; only main.ts turns outcomes and errors into exit codes.
 */
import { MedvaultError, codes, printable } from '@medvault/protocol';
import { loadConfig, type AgentConfig } from '../config.js';
import { openDiskRepository, readRecoveryKey } from '../repo/disk.js';
import type { Repository } from '../repo/repository.js';

/** How a command ended, beyond success or a thrown error. */
export type CommandStatus = 'ok' | 'partial' | 'damaged' | 'failed' | 'disk-failed';

export interface CliContext {
  /** Global options, filled in by main.ts before any command runs. */
  options: { config: string; json: boolean; recoveryKey?: string };
  status: CommandStatus;
  config(): AgentConfig;
  /**
   * Prints a command's result: `human` on a terminal, each of its lines printable() (names are
   * escaped where they become display strings; this also catches a system message quoting a raw
   * path), or `json` (plus ok:true) with --json, as it is.
   */
  print(human: string, json: Record<string, unknown>): void;
  /** Opens the repository on `disk` with the recovery key (--recovery-key) or the local key. */
  openRepo(disk: string): Promise<Repository>;
}

export function createContext(defaultConfig: string): CliContext {
  let cfg: AgentConfig | undefined;
  const ctx: CliContext = {
    options: { config: defaultConfig, json: false },
    status: 'ok',
    config() {
      cfg ??= loadConfig(ctx.options.config);
      return cfg;
    },
    print(human, json) {
      if (ctx.options.json) process.stdout.write(`${JSON.stringify({ ok: ctx.status === 'ok', ...json })}\n`);
      else if (human) process.stdout.write(printable(human.endsWith('\n') ? human : `${human}\n`, '\n'));
    },
    async openRepo(disk) {
      const unlock = ctx.options.recoveryKey ? await readRecoveryKey(ctx.options.recoveryKey) : undefined;
      return openDiskRepository(disk, ctx.config(), unlock);
    },
  };
  return ctx;
}

/** Runs `fn` on each configured disk's repository, closing it afterwards. */
export async function eachRepo<T>(ctx: CliContext, fn: (repo: Repository, disk: string) => Promise<T>): Promise<{ disk: string; value?: T; error?: unknown }[]> {
  const out: { disk: string; value?: T; error?: unknown }[] = [];
  for (const { path } of ctx.config().disks) {
    try {
      const repo = await ctx.openRepo(path);
      try {
        out.push({ disk: path, value: await fn(repo, path) });
      } finally {
        await repo.close();
      }
    } catch (error) {
      out.push({ disk: path, error });
    }
  }
  return out;
}

/**
 * Finds the first disk whose repository has snapshot `ref` and runs `fn` with it. A disk that
 * cannot be opened (unplugged) is passed over for the next: it had made the restore of a snapshot
 * on the other disk fail; its error is said only when no disk has the snapshot.
 */
export async function withSnapshotRepo<T>(ctx: CliContext, ref: string, store: string | undefined, fn: (repo: Repository, hash: string, disk: string) => Promise<T>): Promise<T> {
  const disks = ctx.config().disks.map((d) => d.path);
  let inner: unknown; // the first not-found from `fn` (a path not in the snapshot), said as it is
  const opened: string[] = [];
  const closed: unknown[] = []; // why the others could not be opened
  for (const path of disks) {
    let repo: Repository;
    try {
      repo = await ctx.openRepo(path);
    } catch (err) {
      closed.push(err);
      continue;
    }
    opened.push(path);
    let found = false;
    try {
      const s = await repo.resolveSnapshot(ref, store);
      found = true;
      return await fn(repo, s.hash, path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (found) inner ??= err;
    } finally {
      await repo.close();
    }
  }
  if (inner) throw inner;
  if (opened.length === 0) throw closed[0];
  // each disk holds its own repository, so ids differ from disk to disk: name every disk looked on
  const how = ref === 'latest' || /^[0-9a-f]{6,64}$/.test(ref) ? '' : ` (a snapshot is named "latest" or by 6 or more hex digits of its id)`;
  const not = closed.map((e) => `; not looked on ${errorMessage(e)}`).join('');
  throw new MedvaultError(codes.NOT_FOUND, `no snapshot ${ref}${store ? ` of store ${store}` : ''} on ${opened.length === 1 ? `the backup disk ${opened[0]}` : `any backup disk (${opened.join(', ')})`}${how}${not}; medvault-agent snapshots lists them`);
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: string })?.code === 'MV_ERR_NOT_FOUND';
}

export function errorMessage(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

export { formatBytes, formatCount, formatTable, progressWork } from '@medvault/protocol';
