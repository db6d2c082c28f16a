/** `medvault-agent check [--read-data]`: prove every disk's repository is whole (exit 5 when not). */
import type { Command } from 'commander';
import { Checker } from '../check/checker.js';
import { MedvaultError, codes } from '@medvault/protocol';
import { eachRepo, errorMessage, type CliContext } from './context.js';

/** "10%" or "0.1" → 0.1; MV_ERR_CONFIG_INVALID unless 0 < f <= 1. */
export function parseSubset(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  const f = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(f > 0 && f <= 1)) throw new MedvaultError(codes.CONFIG_INVALID, `--read-data-subset ${text}: expected a percentage such as 10% (or a fraction in (0, 1])`);
  return f;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('check every configured disk: structure, or with --read-data every byte')
    .option('--read-data', 'read every pack and authenticate every blob')
    .option('--read-data-subset <n%>', 'read and authenticate a random part of the packs, e.g. 10%')
    .action(async (opts: { readData?: boolean; readDataSubset?: string }) => {
      const subset = opts.readDataSubset === undefined ? undefined : parseSubset(opts.readDataSubset);
      const runs = await eachRepo(ctx, (repo) => new Checker(repo).check({ readData: opts.readData ?? false, ...(subset !== undefined ? { readDataSubset: subset } : {}) }));
      const lines: string[] = [];
      for (const r of runs) {
        if (r.error) {
          lines.push(`${r.disk}: cannot check: ${errorMessage(r.error)}`);
          continue;
        }
        const c = r.value!;
        lines.push(`${r.disk}: ${c.ok ? 'ok' : 'DAMAGED'}: ${c.snapshots} snapshots, ${c.indexes} index files, ${c.packs} packs${opts.readData || subset !== undefined ? `, ${c.packsRead} packs read, ${c.blobsRead} blobs authenticated` : ''}${c.unindexed ? `, ${c.unindexed} unindexed packs (left by an interrupted run)` : ''}`);
        for (const d of c.damaged) lines.push(`  damaged ${d.kind} ${d.name}: ${d.problem}`);
        for (const a of c.affected) lines.push(`  affects snapshot ${a.snapshot.slice(0, 12)} ${a.path || '(whole snapshot)'}: ${a.problem}`);
      }
      if (runs.some((r) => r.value && !r.value.ok)) ctx.status = 'damaged';
      else if (runs.some((r) => r.error)) ctx.status = 'failed';
      ctx.print(lines.join('\n'), { command: 'check', readData: opts.readData ?? false, results: runs.map((r) => (r.error ? { disk: r.disk, error: errorMessage(r.error) } : { disk: r.disk, ...r.value! })) });
    });
}
