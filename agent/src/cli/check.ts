/** `medvault-agent check [--read-data]`: prove every disk's repository is whole (exit 5 when not). */
import type { Command } from 'commander';
import { Checker } from '../check/checker.js';
import { eachRepo, errorMessage, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('check every configured disk: structure, or with --read-data every byte')
    .option('--read-data', 'read every pack and authenticate every blob')
    .action(async (opts: { readData?: boolean }) => {
      const runs = await eachRepo(ctx, (repo) => new Checker(repo).check({ readData: opts.readData ?? false }));
      const lines: string[] = [];
      for (const r of runs) {
        if (r.error) {
          lines.push(`${r.disk}: cannot check: ${errorMessage(r.error)}`);
          continue;
        }
        const c = r.value!;
        lines.push(`${r.disk}: ${c.ok ? 'ok' : 'DAMAGED'}: ${c.snapshots} snapshots, ${c.indexes} index files, ${c.packs} packs${opts.readData ? `, ${c.blobsRead} blobs authenticated` : ''}`);
        for (const d of c.damaged) lines.push(`  damaged ${d.kind} ${d.name}: ${d.problem}`);
        for (const a of c.affected) lines.push(`  affects snapshot ${a.snapshot.slice(0, 12)} ${a.path || '(whole snapshot)'}: ${a.problem}`);
      }
      if (runs.some((r) => r.value && !r.value.ok)) ctx.status = 'damaged';
      else if (runs.some((r) => r.error)) ctx.status = 'failed';
      ctx.print(lines.join('\n'), { command: 'check', readData: opts.readData ?? false, results: runs.map((r) => (r.error ? { disk: r.disk, error: errorMessage(r.error) } : { disk: r.disk, ...r.value! })) });
    });
}
