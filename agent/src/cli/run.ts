/**
 * `medvault-agent run`: the appliance's daemon. Replicates the first disk's repository off site,
 * follows receipts and restore orders, announces snapshots and heartbeats, until SIGTERM/SIGINT.
 * Logs are JSON lines on stdout (journald keeps them).
 */
import type { Command } from 'commander';
import pino from 'pino';
import { MedvaultError, codes, importPublicKey } from '@medvault/protocol';
import { AgentDaemon, type DaemonRepo } from '../daemon/daemon.js';
import { openLink } from '../replicate/link.js';
import { ReceiptBook } from '../replicate/receipts.js';
import { Spool } from '../replicate/spool.js';
import { OrderLedger } from '../orders/ledger.js';
import { OrderRunner } from '../orders/runner.js';
import { Restorer } from '../restore/restorer.js';
import { Repository } from '../repo/repository.js';
import { DirStore } from '../store/dir-store.js';
import { readLocalKey } from '../crypto/local-key.js';
import type { CliContext } from './context.js';

export const AGENT_VERSION = '0.1.0';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run the agent daemon: replicate off site, carry out restore orders, send heartbeats')
    .action(async () => {
      const cfg = ctx.config();
      if (!cfg.nats) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: [nats] servers are needed to run the daemon`);
      if (!cfg.controller_public_key) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: controller_public_key is needed to verify orders and receipts`);
      const controllerKey = importPublicKey(cfg.controller_public_key);
      const logger = pino({ base: { site: cfg.site, component: 'agent' } });
      const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}) => logger[level](fields, msg);

      // The daemon keeps its catalog in memory, so CLI commands can open the disk's LevelDB cache meanwhile.
      const disk = cfg.disks[0]!.path;
      const repo = await Repository.open(new DirStore(disk), { localKey: await readLocalKey(cfg.key_file) }, { label: disk });
      const link = await openLink({ servers: cfg.nats.servers, name: `medvault-agent ${cfg.site}`, log: (m, f) => log('info', m, f) });
      const book = ReceiptBook.open(cfg.state_dir);
      const spool = new Spool(cfg.state_dir, cfg.site);
      const ledger = OrderLedger.open(cfg.state_dir);
      const runner = new OrderRunner({
        site: cfg.site,
        controllerKey,
        ledger,
        engine: (source) =>
          source === 'offsite'
            ? undefined
            : {
                restore: async (o) => {
                  await repo.syncCatalog();
                  return new Restorer(repo).restore(o);
                },
              },
        restoreRoots: cfg.restore_roots,
        report: (s) => spool.add('status', s),
        log: (e) => spool.add('log', e),
        now: Date.now,
      });
      const view: DaemonRepo = {
        id: repo.id,
        path: disk,
        listObjects: (kind) => repo.listObjects(kind),
        readObject: (kind, hash) => repo.readObject(kind, hash),
        snapshotObjects: (hash) => repo.snapshotObjects(hash),
        async listSnapshots() {
          await repo.syncCatalog();
          return (await repo.snapshots()).map((s) => ({ hash: s.hash, time: s.time, store: s.store, job: s.job, files: s.summary.files, bytes: s.summary.bytes }));
        },
      };
      const daemon = new AgentDaemon({ site: cfg.site, version: AGENT_VERSION, stateDir: cfg.state_dir, repo: view, link, book, spool, runner, controllerKey, now: Date.now, log });
      daemon.start();
      log('info', 'agent running', { disk, repo: repo.id, nats: cfg.nats.servers });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      log('info', 'agent stopping');
      await daemon.stop();
      await link.close();
      book.close();
      ledger.close();
      await repo.close();
    });
}
