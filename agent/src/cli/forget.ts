/**
 * `medvault-agent forget [--keep-… N] [--keep-within 30d] [--hold-tag T] [--dry-run] [--prune]`
 * and `medvault-agent prune`: apply retention on every disk, saying why each snapshot is kept.
 */
import type { Command } from 'commander';
import { MedvaultError, codes, repeatable } from '@medvault/protocol';
import { Pruner, type PruneResult } from '../prune/pruner.js';
import { hasRules, parseDuration, type RetentionPolicy } from '../prune/policy.js';
import { eachRepo, errorMessage, formatBytes, formatCount, type CliContext } from './context.js';

interface ForgetOpts {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  holdTag: string[];
  store?: string;
  dryRun?: boolean;
  prune?: boolean;
}

function count(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new MedvaultError(codes.CONFIG_INVALID, `--${name} ${v}: expected a whole number`);
  return Number(v);
}

export function policyOf(o: ForgetOpts): RetentionPolicy {
  const p: RetentionPolicy = { holdTags: o.holdTag };
  const set = (k: keyof RetentionPolicy, name: string, v: string | undefined) => {
    const n = count(name, v);
    if (n !== undefined) (p as Record<string, unknown>)[k] = n;
  };
  set('last', 'keep-last', o.keepLast);
  set('hourly', 'keep-hourly', o.keepHourly);
  set('daily', 'keep-daily', o.keepDaily);
  set('weekly', 'keep-weekly', o.keepWeekly);
  set('monthly', 'keep-monthly', o.keepMonthly);
  set('yearly', 'keep-yearly', o.keepYearly);
  if (o.keepWithin !== undefined) {
    const ms = parseDuration(o.keepWithin);
    if (ms === undefined) throw new MedvaultError(codes.CONFIG_INVALID, `--keep-within ${o.keepWithin}: expected a duration such as 30d, 1y6m or 12h`);
    p.withinMs = ms;
  }
  return p;
}

async function apply(ctx: CliContext, policy: RetentionPolicy, o: { store?: string; dryRun: boolean; prune: boolean }, command: string): Promise<void> {
  const runs = await eachRepo(ctx, (repo) => new Pruner(repo).run({ policy, prune: o.prune, dryRun: o.dryRun, ...(o.store ? { store: o.store } : {}) }));
  const lines: string[] = [];
  for (const r of runs) {
    if (r.error) {
      lines.push(`${r.disk}: FAILED: ${errorMessage(r.error)}`);
      continue;
    }
    const v: PruneResult = r.value!;
    lines.push(`${r.disk}: ${o.dryRun ? 'would forget' : 'forgot'} ${v.forgotten.length} of ${formatCount(v.decisions.length, 'snapshot')}`);
    for (const d of v.decisions) lines.push(`  ${d.keep ? 'keep  ' : 'forget'} ${d.hash.slice(0, 12)} ${new Date(d.time).toISOString()} ${d.store}${d.keep ? `: ${d.reasons.join('; ')}` : ''}`);
    if (o.prune && !o.dryRun) lines.push(`  pruned: ${formatCount(v.packsDeleted, 'pack')} deleted, ${v.packsRepacked} repacked, ${formatBytes(v.bytesFreed)} freed, ${formatCount(v.indexesRewritten, 'index file')} written`);
  }
  if (runs.some((r) => r.error)) ctx.status = 'failed';
  ctx.print(lines.join('\n'), { command, dryRun: o.dryRun, results: runs.map((r) => (r.error ? { disk: r.disk, error: errorMessage(r.error), code: (r.error as MedvaultError).code } : { disk: r.disk, ...r.value! })) });
  const locked = runs.find((r) => (r.error as MedvaultError | undefined)?.code === codes.REPO_LOCKED);
  if (locked && runs.every((r) => r.error)) throw locked.error;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('forget')
    .description('forget snapshots that the retention policy does not keep (legal holds are never forgotten)')
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per ISO week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('--keep-within <duration>', 'keep everything within this of the newest snapshot (30d, 1y6m, 12h)')
    .option('--hold-tag <tag>', 'a tag that puts a snapshot on legal hold (repeatable; legal-hold always does)', repeatable, [] as string[])
    .option('--store <name>', 'only snapshots of this store')
    .option('--dry-run', 'only say what would be forgotten and why each snapshot is kept')
    .option('--prune', 'then delete the data no remaining snapshot needs')
    .action(async (o: ForgetOpts) => {
      const policy = policyOf(o);
      if (!hasRules(policy)) throw new MedvaultError(codes.CONFIG_INVALID, 'forget: give at least one --keep-… rule');
      await apply(ctx, policy, { ...(o.store ? { store: o.store } : {}), dryRun: o.dryRun ?? false, prune: o.prune ?? false }, 'forget');
    });
  program
    .command('prune')
    .description('delete data that no snapshot needs (crash-safe; nothing a snapshot needs is deleted)')
    .action(async () => apply(ctx, {}, { dryRun: false, prune: true }, 'prune'));
}
