/**
 * `medvault-agent check [--read-data] [--repair]`: prove every disk's repository is whole (exit 5
 * when not). --repair heals what is damaged or missing from the off-site copy (check/repair.ts),
 * names each object healed or not healable, and raises an alert; exit 0 only if all were healed.
 */
import type { Command } from 'commander';
import { Checker, type CheckResult } from '../check/checker.js';
import { repairRepository, type HealedObject } from '../check/repair.js';
import { MedvaultError, codes } from '@medvault/protocol';
import { DirStore } from '../store/dir-store.js';
import { OffsiteStore } from '../offsite/offsite-store.js';
import { siteLink } from '../offsite/restore-source.js';
import type { Link } from '../replicate/link.js';
import { Alerts } from '../daemon/alerts.js';
import { Spool } from '../replicate/spool.js';
import { eachRepo, errorMessage, formatCount, type CliContext } from './context.js';

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
    .option('--repair', 'with --read-data: heal damaged or missing packs, index files, snapshots and key files from the off-site copy')
    .action(async (opts: { readData?: boolean; readDataSubset?: string; repair?: boolean }) => {
      if (opts.repair && !opts.readData) throw new MedvaultError(codes.CONFIG_INVALID, '--repair needs --read-data (only a full read finds every damaged pack)');
      const subset = opts.readDataSubset === undefined ? undefined : parseSubset(opts.readDataSubset);
      const cfg = ctx.config();
      // NATS unreachable: the local check still runs, and says what it could not heal.
      let offline: MedvaultError | undefined;
      const link: Link | undefined = opts.repair ? await siteLink(cfg, 'check').catch((err) => {
        if (!(err instanceof MedvaultError && err.code === codes.TRANSPORT_FAILED)) throw err;
        offline = err;
        return undefined;
      }) : undefined;
      let runs: { disk: string; value?: CheckResult & { healing?: HealedObject[] }; error?: unknown }[];
      try {
        runs = await eachRepo(ctx, async (repo, disk) => {
          if (!link) return new Checker(repo).check({ readData: opts.readData ?? false, ...(subset !== undefined ? { readDataSubset: subset } : {}) });
          const r = await repairRepository(repo, new DirStore(disk), new OffsiteStore(link, cfg.site, repo.id));
          return { ...r.check, ok: r.ok, healing: r.objects };
        });
      } finally {
        await link?.close();
      }
      const lines: string[] = [];
      const spool = new Spool(cfg.state_dir, cfg.site);
      const alerts = new Alerts({ site: cfg.site, send: (a) => spool.add('alert', a), now: Date.now });
      for (const r of runs) {
        if (r.error) {
          lines.push(`${r.disk}: cannot check: ${errorMessage(r.error)}`);
          continue;
        }
        const c = r.value!;
        lines.push(`${r.disk}: ${c.ok ? 'ok' : 'DAMAGED'}: ${formatCount(c.snapshots, 'snapshot')}, ${formatCount(c.indexes, 'index file')}, ${formatCount(c.packs, 'pack')}${opts.readData || subset !== undefined ? `, ${formatCount(c.packsRead, 'pack')} read, ${formatCount(c.blobsRead, 'blob')} authenticated` : ''}${c.unindexed ? `, ${formatCount(c.unindexed, 'unindexed pack')} (left by an interrupted run)` : ''}`);
        for (const h of c.healing ?? []) lines.push(h.healed ? `  healed ${h.kind} ${h.name} from off site (was: ${h.problem})` : `  NOT HEALABLE ${h.kind} ${h.name} (${h.problem}): ${h.why}`);
        for (const d of c.damaged) lines.push(`  damaged ${d.kind} ${d.name}: ${d.problem}${offline ? ' (NOT HEALED: the off-site copy is unreachable)' : ''}`);
        for (const a of c.affected) lines.push(`  affects snapshot ${a.snapshot.slice(0, 12)} ${a.path || '(whole snapshot)'}: ${a.problem}`);
        const healing = c.healing ?? [];
        // every pack read and nothing to heal: what an earlier repair reported is over
        if (c.ok && healing.length === 0 && opts.readData) alerts.resolve(`repair:${r.disk}`, `${r.disk}: check --read-data clean`, { code: 'MV_REPAIRED', severity: 'warning' });
        if (healing.length > 0) {
          const bad = healing.filter((h) => !h.healed);
          const names = (hs: HealedObject[]) => hs.map((h) => `${h.kind} ${h.name}`).join(', ');
          alerts.raise({
            key: `repair:${r.disk}`, code: bad.length > 0 || !c.ok ? codes.DATA_CORRUPT : 'MV_REPAIRED', severity: bad.length > 0 || !c.ok ? 'critical' : 'warning',
            message: `${r.disk}: ${formatCount(healing.length - bad.length, 'damaged or missing object')} healed from the off-site copy${healing.length > bad.length ? ` (${names(healing.filter((h) => h.healed))})` : ''}${bad.length > 0 ? `; NOT healable: ${names(bad)}` : ''}${c.ok ? '' : '; the repository is still damaged'}`,
          });
        }
      }
      if (offline) lines.push(`not repaired: ${offline.message}`);
      if (runs.some((r) => r.value && !r.value.ok)) ctx.status = 'damaged';
      else if (runs.some((r) => r.error)) ctx.status = 'failed';
      ctx.print(lines.join('\n'), { command: 'check', readData: opts.readData ?? false, repair: opts.repair ?? false, ...(offline ? { repairError: { code: offline.code, message: offline.message } } : {}), results: runs.map((r) => (r.error ? { disk: r.disk, error: errorMessage(r.error) } : { disk: r.disk, ...r.value! })) });
    });
}
