/**
 * `medvault-agent run`: the appliance's daemon. Replicates the first disk's repository off site,
 * follows receipts and restore orders, announces snapshots and heartbeats, until SIGTERM/SIGINT.
 * Logs are JSON lines on stdout (journald keeps them).
 */
import type { Command } from 'commander';
import pino from 'pino';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedvaultError, codes, formatCount, importPublicKey, keyId } from '@medvault/protocol';
import { AuditLog } from '../audit/audit-log.js';
import { readFileIfExists, writeFileAtomic } from '../state/journal.js';
import { AgentDaemon, daemonRepo } from '../daemon/daemon.js';
import { openLink } from '../replicate/link.js';
import { throttledLink } from '../replicate/throttle.js';
import { catchUpEstimator } from '../replicate/catch-up.js';
import { ReceiptBook } from '../replicate/receipts.js';
import { Spool } from '../replicate/spool.js';
import { OrderLedger } from '../orders/ledger.js';
import { OrderRunner } from '../orders/runner.js';
import { restoreFrom, openOffsiteRepository } from '../offsite/restore-source.js';
import { DrillOrders } from '../drill/drill-orders.js';
import { DrillRunner, spoolPublisher } from '../drill/drill-runner.js';
import { Repository } from '../repo/repository.js';
import { DirStore } from '../store/dir-store.js';
import { readLocalKey } from '../crypto/local-key.js';
import type { CliContext } from './context.js';
import { Alerts } from '../daemon/alerts.js';
import { runningDaemon, writeStatus, type AgentStatus } from '../daemon/status.js';
import { DiskProbe, diskStates } from '../daemon/disks.js';
import { heartbeatStores, startAgentMetrics } from '../daemon/metrics.js';
import { JobRunner } from '../jobs/runner.js';
import { ContinuousProtection } from '../jobs/continuous.js';
import { Watchdog, systemdNotifier } from '../platform/systemd.js';
import type { Link } from '../replicate/link.js';
import { nextOccurrence } from '../schedule/cron.js';
import { rpoTargetS } from '../schedule/planner.js';

export const AGENT_VERSION = '0.1.0';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run the agent daemon: replicate off site, carry out restore orders, send heartbeats')
    .action(async () => {
      const cfg = ctx.config();
      const other = runningDaemon(cfg.state_dir, Date.now());
      if (other) throw new MedvaultError(codes.REPO_LOCKED, `the agent daemon already runs on ${cfg.state_dir} (pid ${other.pid}, status written ${Math.max(0, Math.round((Date.now() - other.updatedAt) / 1000))} s ago): not starting a second one; stop it first (systemctl stop medvault-agent)`);
      if (!cfg.nats) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: [nats] servers are needed to run the daemon`);
      if (!cfg.controller_public_key) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: controller_public_key is needed to verify orders and receipts`);
      const controllerKey = importPublicKey(cfg.controller_public_key);
      const logger = pino({ base: { site: cfg.site, component: 'agent' } });
      const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}) => logger[level](fields, msg);

      // The daemon keeps its catalogs in memory, so CLI commands can open the disks' LevelDB caches meanwhile.
      // The first disk's repository is the one replicated off site; backups go to every usable disk.
      const localKey = await readLocalKey(cfg.key_file);
      const disks: { disk: string; repo?: Repository; error?: string }[] = [];
      for (const { path } of cfg.disks) {
        try {
          disks.push({ disk: path, repo: await Repository.open(new DirStore(path), { localKey }, { label: path }) });
        } catch (err) {
          disks.push({ disk: path, error: (err as Error).message });
        }
      }
      // The first usable disk is replicated off site and serves orders; a dead first disk does not
      // silence the appliance (the others keep backing up, heartbeats and orders go on).
      const primary = disks.find((d) => d.repo);
      if (!primary) throw new MedvaultError(codes.STORAGE_FAILED, `no backup disk is usable: ${disks.map((d) => `${d.disk}: ${d.error}`).join('; ')}`);
      const disk = primary.disk;
      const repo = primary.repo!;
      const spool = new Spool(cfg.state_dir, cfg.site);
      // The audit trail: every entry is also queued for replication (message id by chain and seq).
      const audit = AuditLog.open(cfg.state_dir, cfg.site, { replicate: (e, id) => spool.add('audit', e, id) });
      const agentActor = { kind: 'agent' as const, id: cfg.site };
      if (!audit.startReport.ok) {
        log('error', 'AUDIT CHAIN BROKEN: the local audit log was edited, truncated or garbled', { problems: audit.startReport.problems.slice(0, 10) });
        audit.record({ actor: agentActor, action: 'audit.verify', object: 'audit.jsonl', result: 'failed', detail: { problems: audit.startReport.problems.length, first: audit.startReport.problems[0]!.message } });
      }
      const configDigest = createHash('sha256').update(readFileSync(cfg.file)).digest('hex');
      const digestFile = join(cfg.state_dir, 'config.sha256');
      const before = readFileIfExists(digestFile)?.trim();
      if (before !== configDigest) {
        audit.record({ actor: agentActor, action: 'config.change', object: cfg.file, result: 'ok', detail: { from: before ?? null, to: configDigest } });
        writeFileAtomic(digestFile, `${configDigest}\n`);
      }
      audit.record({
        actor: agentActor, action: 'agent.start', object: `site:${cfg.site}`, result: 'ok',
        detail: { version: AGENT_VERSION, config: configDigest, controllerKid: keyId(controllerKey), disk, repo: repo.id, keyFile: cfg.key_file, tls: cfg.nats.ca_file !== undefined, nkey: cfg.nats.nkey_file !== undefined },
      });
      // Object parts keep to the [replication] bandwidth schedule; heartbeats, alerts and events do not wait.
      // The link is made at once, connected or not: backups, status and READY do not wait for NATS.
      const link = throttledLink(await openLink({
        servers: cfg.nats.servers, name: `medvault-agent ${cfg.site}`, site: cfg.site, log: (m, f) => log('info', m, f),
        ...(cfg.nats.nkey_file ? { nkeySeedFile: cfg.nats.nkey_file } : {}),
        ...(cfg.nats.ca_file ? { caFile: cfg.nats.ca_file } : {}),
      }), { windows: cfg.replication?.bandwidth ?? [], ...(cfg.replication?.timezone ? { timeZone: cfg.replication.timezone } : {}) });
      // systemd (Type=notify): WATCHDOG=1 only while replication (a round, or a part sent), the job
      // planner and the status timer have all run recently and the control follower is not dead
      // (daemon.followerProblem); a hung daemon is restarted.
      const watchdog = new Watchdog(systemdNotifier(), [
        { name: 'replication', maxAgeMs: 5 * 60_000 },
        { name: 'jobs', maxAgeMs: 3 * 60_000 },
        { name: 'status', maxAgeMs: 60_000 },
      ], undefined, (m, f) => log('warn', m, f));
      const progressLink = new Proxy(link, {
        get(target, prop) {
          if (prop === 'publish') return (...a: Parameters<Link['publish']>) => target.publish(...a).then((r) => (watchdog.beat('replication'), r));
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      const alerts = new Alerts({ site: cfg.site, send: (a) => spool.add('alert', a), now: Date.now });
      // Backups (scheduled, continuous, rescans): made before the order runner, which holds the
      // stores an in-place restore writes into.
      let continuous: ContinuousProtection | undefined;
      const jobs = new JobRunner({
        site: cfg.site, stateDir: cfg.state_dir, stores: cfg.stores, now: Date.now, alerts,
        repos: () => disks.filter((d) => d.repo).map((d) => ({ disk: d.disk, repo: d.repo! })),
        log: (e) => spool.add('log', e),
        committed: (results) => log('info', 'backup committed', { snapshots: results.map((r) => r.snapshot) }),
        blocked: (store) => continuous?.blocked(store),
        onPlan: () => watchdog.beat('jobs'),
      });
      const book = ReceiptBook.open(cfg.state_dir);
      const ledger = OrderLedger.open(cfg.state_dir);
      const runner = new OrderRunner({
        site: cfg.site,
        controllerKey,
        ledger,
        // local, offsite, or auto: the local disk when it has the snapshot whole, else off site (restore-source.ts)
        engine: (source) => ({
          restore: (o) => restoreFrom(source, o, { local: async () => repo, offsite: () => openOffsiteRepository(link, cfg.site, repo.id, { localKey }) }, (m, f) => log('warn', m, f)),
        }),
        restoreRoots: cfg.restore_roots,
        report: (s, id) => spool.add('status', s, id),
        log: (e, id) => spool.add('log', e, id),
        now: Date.now,
        audit,
        holdStores: (target, orderId) => jobs.hold(jobs.storesAt(target), `after in-place restore order ${orderId}`),
      });
      const interrupted = runner.recoverInterrupted();
      if (interrupted.length > 0) log('warn', 'orders interrupted by the last stop were reported failed', { orders: interrupted });
      // Drill orders: their own ledger; the local copy is the replicated disk's repository.
      const drillLedger = OrderLedger.open(cfg.state_dir, 'drills.jsonl');
      const drillRunner = new DrillRunner({
        site: cfg.site, stores: cfg.stores, drillDir: cfg.drill_dir ?? join(cfg.state_dir, 'drills'), now: Date.now, audit, publish: spoolPublisher(spool),
        open: async (source) => {
          if (source === 'local') return (await repo.syncCatalog(), { repo, label: disk, close: async () => {} });
          const off = await openOffsiteRepository(link, cfg.site, repo.id, { localKey });
          return { repo: off, label: off.label, close: () => off.close() };
        },
      });
      const drills = new DrillOrders({ site: cfg.site, controllerKey, ledger: drillLedger, now: Date.now, audit, runner: drillRunner });
      const cutShort = drills.recoverInterrupted();
      if (cutShort.length > 0) log('warn', 'drills interrupted by the last stop', { drills: cutShort });
      const leftovers = await drillRunner.cleanLeftovers();
      if (leftovers.length > 0) log('warn', 'removed scratch folders and databases left by drills cut short', { leftovers });
      const view = daemonRepo(repo, disk);
      let lastStatus: AgentStatus | undefined;
      const probe = new DiskProbe(Date.now);
      const detail = async () => {
        if (!lastStatus) return {};
        const snaps = await repo.snapshots().catch(() => []);
        // A change is covered once a successful run of its store started after it.
        const coveredFrom = (store: string) => [...jobs.history].reverse().find((h) => h.store === store && h.result === 'ok')?.startedAt;
        return { disks: await probe.report(lastStatus.disks), stores: heartbeatStores(lastStatus, snaps, (st) => continuous?.pendingSince(st, coveredFrom(st))) };
      };
      const daemon = new AgentDaemon({ site: cfg.site, version: AGENT_VERSION, stateDir: cfg.state_dir, repo: view, link: progressLink, book, spool, runner, drills, controllerKey, now: Date.now, log, onTick: () => watchdog.beat('replication'), auditHead: () => audit.head, detail, catchUp: catchUpEstimator({ source: view, book, link }) });
      // A control follower silent far past its own re-creation while NATS is up fails the watchdog too.
      watchdog.addCheck('control', () => daemon.followerProblem());
      daemon.start();
      for (const d of disks) if (d.error) alerts.raise({ key: `disk:${d.disk}`, code: 'MV_ERR_STORAGE_FAILED', severity: 'critical', message: `backup disk ${d.disk} is not usable: ${d.error}` });
      if (!audit.startReport.ok) alerts.raise({ key: 'audit:local', code: codes.AUDIT_BROKEN, severity: 'critical', message: `the appliance's audit log was edited, truncated or garbled: ${audit.startReport.problems[0]!.message}`.slice(0, 2000) });
      continuous = new ContinuousProtection({ stores: cfg.stores, runner: jobs, alerts });
      await continuous.start();
      jobs.start();
      const startedAt = Date.now();
      // The link's state as last sampled, and since when (the start, or the change seen).
      let linkState = { connected: link.connected, since: startedAt };
      const report = async () => {
        if (link.connected !== linkState.connected) linkState = { connected: link.connected, since: Date.now() };
        const snaps = await repo.snapshots().catch(() => []);
        writeStatus(cfg.state_dir, lastStatus = {
          pid: process.pid, site: cfg.site, updatedAt: Date.now(), startedAt,
          stores: cfg.stores.map((st) => {
            const last = jobs.lastRuns(st.name);
            const snap = snaps.filter((x) => x.store === st.name).pop();
            const job = [...jobs.history].reverse().find((h) => h.store === st.name);
            const w = continuous?.health(st.name);
            return {
              name: st.name, type: st.type, continuous: st.type === 'files' && st.continuous, rpoS: rpoTargetS(st, nextOccurrence, startedAt), schedule: st.schedule,
              ...(w ? { watcher: w } : {}), ...(last.full ? { lastFull: last.full } : {}), ...(last.incremental ? { lastIncremental: last.incremental } : {}),
              ...(snap ? { lastSnapshot: { hash: snap.hash, time: snap.time, job: snap.job } } : {}),
              ...(job ? { lastJob: { job: job.job, result: job.result, endedAt: job.endedAt, ...(job.error ? { error: job.error } : {}) } } : {}),
            };
          }),
          disks: await diskStates(disks),
          ...(jobs.current ? { running: jobs.current } : {}),
          queued: jobs.queued, alerts: alerts.list(), backlog: daemon.backlog,
          link: { servers: cfg.nats!.servers, ...linkState },
        });
      };
      const statusTimer = setInterval(() => void report().then(() => watchdog.beat('status')).catch((err) => log('warn', 'status not written', { error: (err as Error).message })), 2000);
      await report();
      const metrics = process.env.MEDVAULT_METRICS_PORT ? await startAgentMetrics(Number(process.env.MEDVAULT_METRICS_PORT), () => lastStatus) : undefined;
      log('info', 'agent running', { disk, repo: repo.id, nats: cfg.nats.servers });
      watchdog.beat('status');
      watchdog.ready(`running: site ${cfg.site}, ${formatCount(cfg.stores.length, 'store')}, ${disks.filter((d) => d.repo).length} of ${formatCount(disks.length, 'disk')}`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      log('info', 'agent stopping');
      watchdog.stopping();
      clearInterval(statusTimer);
      await metrics?.close();
      await continuous.stop();
      await jobs.stop();
      await daemon.stop();
      audit.record({ actor: agentActor, action: 'agent.stop', object: `site:${cfg.site}`, result: 'ok' });
      // Not connected, a flush would only wait for the ack timeout: the spool is sent after the next start.
      if (link.connected) await spool.flush(link).catch(() => undefined);
      audit.close();
      await link.close();
      book.close();
      ledger.close();
      drillLedger.close();
      for (const d of disks) await d.repo?.close();
    });
}
