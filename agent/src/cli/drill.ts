/**
 * `medvault-agent drill [--store S] [--sample 0.1] [--source local|offsite]... [--json]`: run a
 * disaster-recovery drill here and now (agent/src/drill/): restore into scratch space, verify, measure
 * RTO/RPO, report it (spool → controller), clean up. Exit 0 only when every drill passed.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { MedvaultError, codes, repeatable, drillSources, newOrderId, type DrillResult, type DrillSource } from '@medvault/protocol';
import { appendAudit } from '../audit/audit-log.js';
import { DrillRunner, spoolPublisher, type DrillSourceRepo } from '../drill/drill-runner.js';
import { Spool } from '../replicate/spool.js';
import { openOffsiteRepository, siteLink } from '../offsite/restore-source.js';
import { readLocalKey } from '../crypto/local-key.js';
import { errorMessage, formatBytes, formatCount, type CliContext } from './context.js';
import { parseSubset } from './check.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('drill')
    .description('run a disaster-recovery drill: restore into scratch space, verify every file, measure RTO and RPO, report, clean up')
    .option('--store <name>', 'the store to drill (default: every store)')
    .option('--sample <share>', 'share of the files restored, e.g. 0.1 or 10% (default: all)', '1')
    .option('--source <source>', 'local or offsite (repeatable; default: both when [nats] is configured, else local)', repeatable, [] as string[])
    .action(async (opts: { store?: string; sample: string; source: string[] }) => {
      const cfg = ctx.config();
      const sample = parseSubset(opts.sample);
      const sources = (opts.source.length ? [...new Set(opts.source)] : cfg.nats ? ['local', 'offsite'] : ['local']) as DrillSource[];
      const bad = sources.find((s) => !(drillSources as readonly string[]).includes(s));
      if (bad) throw new MedvaultError(codes.CONFIG_INVALID, `--source ${bad}: expected local or offsite`);
      const stores = opts.store ? cfg.stores.filter((s) => s.name === opts.store) : cfg.stores;
      if (stores.length === 0) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: no store named ${opts.store}`);
      const spool = new Spool(cfg.state_dir, cfg.site);
      const user = `os:${process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? 'unknown')}`;
      const runner = new DrillRunner({
        site: cfg.site, stores: cfg.stores, drillDir: cfg.drill_dir ?? join(cfg.state_dir, 'drills'), now: Date.now,
        publish: spoolPublisher(spool),
        audit: { record: (r) => appendAudit(cfg.state_dir, cfg.site, r, (e, id) => spool.add('audit', e, id)) },
        open: (source) => (source === 'local' ? openLocal(ctx) : openOffsite(ctx)),
      });
      const results: DrillResult[] = [];
      for (const s of stores) {
        results.push(await runner.run({ id: newOrderId(), store: s.name, snapshot: 'latest', sample, sources, requestedBy: { kind: 'user', id: user } }));
      }
      // A copy found corrupt exits 5 as elsewhere (main.ts exitCodeOf), any other failure 1.
      const corrupt = (c?: string) => c === codes.DATA_CORRUPT || c === codes.VERIFY_FAILED;
      if (results.some((r) => r.result !== 'passed')) ctx.status = results.some((r) => r.runs.some((x) => x.result === 'failed' && corrupt(x.error?.code))) ? 'damaged' : 'failed';
      ctx.print(results.map(describeDrill).join('\n'), { command: 'drill', drills: results });
    });
}

/** The first configured disk whose repository opens (the CLI's local copy). */
async function openLocal(ctx: CliContext): Promise<DrillSourceRepo> {
  const problems: string[] = [];
  for (const { path } of ctx.config().disks) {
    try {
      const repo = await ctx.openRepo(path);
      return { repo, label: path, close: () => repo.close() };
    } catch (err) {
      problems.push(`${path}: ${errorMessage(err)}`);
    }
  }
  throw new MedvaultError(codes.STORAGE_FAILED, `no backup disk opens: ${problems.join('; ')}`);
}

/** The off-site copy over the site's own NATS identity (the site's only repository there). */
async function openOffsite(ctx: CliContext): Promise<DrillSourceRepo> {
  const cfg = ctx.config();
  const link = await siteLink(cfg, 'drill');
  try {
    const repo = await openOffsiteRepository(link, cfg.site, undefined, { localKey: await readLocalKey(cfg.key_file) });
    return { repo, label: repo.label, close: async () => (await repo.close(), await link.close()) };
  } catch (err) {
    await link.close();
    throw err;
  }
}

/** A drill result for people: verdict, figures per source, what failed. */
export function describeDrill(r: DrillResult): string {
  const lines = [
    `drill ${r.drillId} of store ${r.store}: ${r.result.toUpperCase()}${r.snapshot ? ` (snapshot ${r.snapshot.slice(0, 12)}, sample ${r.sample})` : ''}`,
    `  RPO ${r.rpoS ?? '?'} s (target ${r.targets.rpoS} s, ${r.met.rpo ? 'met' : 'MISSED'}); RTO target ${r.targets.rtoS} s (${r.met.rto ? 'met' : 'MISSED'})`,
  ];
  for (const x of r.runs) {
    lines.push(`  ${x.source}: ${x.result}, ${formatCount(x.files, 'file')}, ${formatBytes(x.bytes)}, ${x.verified} verified, RTO ${x.rtoS} s${x.database ? `, database ${x.database.name}: ${formatCount(x.database.tables, 'table')}, ${formatCount(x.database.rows, 'row')}` : ''}`);
    if (x.error) lines.push(`    ${x.error.code}: ${x.error.message}`);
    for (const f of x.failed.slice(0, 20)) lines.push(`    FAILED ${f.path}: ${f.reason}`);
  }
  if (r.error && !r.runs.some((x) => x.error === r.error)) lines.push(`  ${r.error.code}: ${r.error.message}`);
  return lines.join('\n');
}
