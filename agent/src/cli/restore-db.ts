/**
 * `medvault-agent restore-db <store> --database NAME [--snapshot latest]`: load a database store's
 * dump from a snapshot into a new database NAME (an existing one is refused, never overwritten).
 */
import type { Command } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import { snapshotFileStream } from '../backup/stream-archiver.js';
import { dumpName, restoreDatabase } from '../sources/database.js';
import { withSnapshotRepo, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('restore-db <store>')
    .description('load a database store from a snapshot into a new database')
    .requiredOption('--database <name>', 'the database to create and load')
    .option('--snapshot <ref>', "'latest' or a snapshot hash (prefix)", 'latest')
    .action(async (storeName: string, opts: { database: string; snapshot: string }) => {
      const cfg = ctx.config();
      const store = cfg.stores.find((s) => s.name === storeName);
      if (!store || store.type === 'files') {
        throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: ${store ? `store ${storeName} is a folder; use restore` : `no store named ${storeName}`}`);
      }
      const started = Date.now();
      const hash = await withSnapshotRepo(ctx, opts.snapshot, storeName, async (repo, hash) => {
        await restoreDatabase(store, opts.database, snapshotFileStream(repo, hash, dumpName(store)));
        return hash;
      });
      ctx.print(`loaded snapshot ${hash.slice(0, 12)} of ${storeName} into database ${opts.database} in ${((Date.now() - started) / 1000).toFixed(1)} s`, {
        command: 'restore-db', store: storeName, snapshot: hash, database: opts.database,
      });
    });
}
