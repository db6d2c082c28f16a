/** `medvault-agent snapshots [--store S]`: list snapshots on every disk, with where their copies are. */
import type { Command } from 'commander';
import { ReceiptBook } from '../replicate/receipts.js';
import { offsiteOnly, snapshotWhereabouts } from '../replicate/offsite-status.js';
import { MedvaultError, codes } from '@medvault/protocol';
import { eachRepo, errorMessage, formatBytes, formatTable, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('snapshots')
    .description('list snapshots on every configured disk')
    .option('--store <name>', 'only snapshots of this record store')
    .action(async (opts: { store?: string }) => {
      const book = ReceiptBook.read(ctx.config().state_dir);
      const runs = await eachRepo(ctx, async (repo) => {
        const all = await repo.snapshots();
        const list = all.filter((s) => opts.store === undefined || s.store === opts.store);
        const rows = [];
        for (const s of list) rows.push({ ...s, repo: repo.id, offsite: await snapshotWhereabouts(repo, book, s.hash) });
        // Receipted snapshots that are gone from this disk: only their hash is known without fetching them.
        for (const hash of offsiteOnly(repo.id, book, all.map((s) => s.hash))) {
          rows.push({ hash, time: 0, store: '?', job: '?' as never, partial: false, summary: { files: 0, bytes: 0 } as never, tags: [] as string[], repo: repo.id, offsite: 'offsite' as const });
        }
        return rows;
      });
      const rows = runs.flatMap((r) => (r.value ?? []).map((s) => ({ disk: r.disk, ...s })));
      if (opts.store !== undefined && rows.length === 0 && runs.every((r) => !r.error)) refuseUnknownStore(ctx, opts.store);
      const lines = formatTable(
        [{ header: 'snapshot' }, { header: 'time' }, { header: 'store' }, { header: 'job' }, { header: 'files', right: true }, { header: 'size', right: true }, { header: 'partial' }, { header: 'offsite' }, { header: 'tags' }, { header: 'disk' }],
        rows.map((s) => [s.hash.slice(0, 12), s.time ? new Date(s.time).toISOString() : '?', s.store, s.job, String(s.summary.files), formatBytes(s.summary.bytes), s.partial ? 'yes' : 'no', s.offsite, s.tags.join(','), s.disk]),
      );
      for (const r of runs) if (r.error) lines.push(`${r.disk}: cannot read: ${errorMessage(r.error)}`);
      if (runs.every((r) => r.error)) throw runs[0]!.error;
      if (runs.some((r) => r.error)) ctx.status = 'failed';
      ctx.print(lines.join('\n'), { command: 'snapshots', snapshots: rows, errors: runs.filter((r) => r.error).map((r) => ({ disk: r.disk, message: errorMessage(r.error) })) });
    });
}

/**
 * `--store` naming no store of the configuration, with no snapshot of that name on any disk, is a
 * typo (an empty table and exit 0 read as "never backed up"): MV_ERR_CONFIG_INVALID naming the
 * stores there are. A store taken out of the configuration still lists its snapshots.
 */
function refuseUnknownStore(ctx: CliContext, store: string): void {
  const cfg = ctx.config();
  if (cfg.stores.some((s) => s.name === store)) return;
  throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: no store named ${store} and no snapshots of one (have: ${cfg.stores.map((s) => s.name).join(', ')})`);
}
