/**
 * The agent daemon (`medvault-agent run`): keeps the off-site copy current and carries out orders.
 * It drains the replication outbox and the event spool, follows the control stream for receipts
 * and orders, announces new snapshots and sends heartbeats, until stopped.
 */
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MAX_NEEDS_PER_PART, MAX_TAG_LENGTH, decode, streams, subjects, validate, type Heartbeat, type ObjectKind } from '@medvault/protocol';
import { FOLLOW_STALL_MS, type Follower, type Link } from '../replicate/link.js';
import type { ReceiptBook } from '../replicate/receipts.js';
import { Replicator, type ReplicaSource } from '../replicate/replicator.js';
import { OffsiteRequests } from '../replicate/offsite-requests.js';
import type { Spool } from '../replicate/spool.js';
import type { OrderRunner } from '../orders/runner.js';
import type { DrillOrders } from '../drill/drill-orders.js';
import type { Repository } from '../repo/repository.js';
import { Journal, readFileIfExists, writeFileAtomic } from '../state/journal.js';

/**
 * The control follower silent this long while the link is connected is dead, not recovering: it
 * re-makes a silent consumer after FOLLOW_STALL_MS, so three times that is far past any re-creation.
 * The daemon then fails its health check and the systemd watchdog restarts the agent; while NATS
 * is simply down the link is not connected and nothing is counted (backups go on locally).
 */
export const FOLLOWER_DEAD_MS = 3 * FOLLOW_STALL_MS;

export interface SnapshotInfo {
  hash: string;
  time: number;
  store: string;
  job: 'full' | 'incremental' | 'continuous';
  files: number;
  bytes: number;
  tags?: string[];
}

/** What the daemon needs of the repository it replicates. */
export interface DaemonRepo extends ReplicaSource {
  readonly path: string;
  listSnapshots(): Promise<SnapshotInfo[]>;
  snapshotObjects(hash: string): Promise<{ kind: ObjectKind; hash: string }[]>;
}

/** The daemon's view of the repository on disk `path` (its catalog re-read before each listing). */
export function daemonRepo(repo: Repository, path: string): DaemonRepo {
  return {
    id: repo.id,
    path,
    listObjects: (kind) => repo.listObjects(kind),
    readRange: (kind, hash, offset, length) => repo.readObjectRange(kind, hash, offset, length),
    snapshotObjects: (hash) => repo.snapshotObjects(hash),
    async listSnapshots() {
      await repo.syncCatalog();
      return (await repo.snapshots()).map((s) => ({ hash: s.hash, time: s.time, store: s.store, job: s.job, files: s.summary.files, bytes: s.summary.bytes, tags: s.tags }));
    },
  };
}

export interface DaemonDeps {
  site: string;
  version: string;
  stateDir: string;
  repo: DaemonRepo;
  link: Link;
  book: ReceiptBook;
  spool: Spool;
  runner: OrderRunner;
  /** Drill orders (mv.v1.ctl.<site>.drill); ignored when absent. */
  drills?: Pick<DrillOrders, 'handle'>;
  controllerKey: KeyObject;
  now: () => number;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  tickMs?: number;
  heartbeatMs?: number;
  /**
   * Called after every round, successful or not, except while a drain started earlier is still
   * running: that one proves itself alive through its publishes (the systemd watchdog watches both).
   */
  onTick?: () => void;
  /** The head of the agent's audit chain, sent in each heartbeat. */
  auditHead?: () => { seq: number; hash: string } | undefined;
  /** Disks and stores for the heartbeat (from the same data as the status file); a failure leaves them out. */
  detail?: () => Promise<Pick<Heartbeat, 'disks' | 'stores'>>;
  /** Catch-up estimate for the heartbeat's backlog (bytes to send, rate, ETA, limit); a failure leaves it out. */
  catchUp?: () => Promise<Pick<Heartbeat['backlog'], 'toSendBytes' | 'rateBps' | 'etaS' | 'limitBps'>>;
}

export class AgentDaemon {
  private readonly replicator: Replicator;
  /** Resend and reconcile requests, one at a time, apart from orders. */
  private readonly requests: OffsiteRequests;
  private offsiteWork: Promise<unknown> = Promise.resolve();
  private readonly announced: Journal<{ hash: string }>;
  private readonly startedAt: number;
  private timer: NodeJS.Timeout | undefined;
  private follower: Follower | undefined;
  private orders: Promise<unknown> = Promise.resolve();
  /**
   * Sequences of orders (restores, drills) received and not yet handled. The saved cursor stays at
   * the first of them, so after a crash each is delivered again: one the ledger knows is answered
   * from it, one it does not know (still queued at the crash) is carried out, never lost.
   */
  private readonly unhandled = new Set<number>();
  private cursor: number;
  private cursorSaved: number;
  private lastHeartbeat = 0;
  private ticking: Promise<void> | undefined;
  private draining: Promise<void> | undefined;
  private stopped = false;
  /** Since when (deps.now) the link has been connected, as last sampled; undefined while it is not. */
  private connectedSince: number | undefined;

  constructor(private readonly deps: DaemonDeps) {
    this.replicator = new Replicator({ site: deps.site, source: deps.repo, link: deps.link, book: deps.book, now: deps.now });
    this.requests = new OffsiteRequests({ site: deps.site, repo: deps.repo, link: deps.link, book: deps.book, replicator: this.replicator, spool: deps.spool, stateDir: deps.stateDir, controllerKey: deps.controllerKey, now: deps.now, log: deps.log });
    this.announced = Journal.open(join(deps.stateDir, 'announced.jsonl'));
    this.startedAt = deps.now();
    this.cursor = Number(readFileIfExists(this.cursorFile) ?? '1') || 1;
    this.cursorSaved = this.cursor;
  }

  /** Objects and bytes not yet receipted, as of the last replication round. */
  get backlog(): { objects: number; bytes: number } {
    const b = this.replicator.backlog;
    return { objects: b.objects, bytes: b.bytes };
  }

  private get cursorFile(): string {
    return join(this.deps.stateDir, 'control.cursor');
  }

  start(): void {
    const { site, link } = this.deps;
    this.follower = link.follow(streams.control.name, subjects.controlPattern(site, '*'), this.cursor, (m) => this.onControl(m.subject, m.data, m.seq));
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        if (!this.stopped) this.timer = setTimeout(loop, this.deps.tickMs ?? 1000);
      });
    };
    loop();
  }

  /** Runs one round now: announce, flush events, replicate, heartbeat. Never throws. */
  async tick(): Promise<void> {
    const { log } = this.deps;
    try {
      // The audit head as queued now: the flush below publishes up to it before the heartbeat names it.
      const auditHead = this.deps.auditHead?.();
      await this.announce();
      this.requests.check();
      // Health: the control follower re-makes a silent consumer itself; still silent past twice that
      // is logged each round (past FOLLOWER_DEAD_MS the health check fails too: followerProblem).
      const silentMs = this.followerSilentMs();
      if (silentMs > 2 * FOLLOW_STALL_MS) log('error', 'control stream follower silent: orders, receipts and requests are not arriving', { silentS: Math.round(silentMs / 1000) });
      await this.deps.spool.flush(this.deps.link);
      // A long drain (a first full copy, a bandwidth limit) does not hold up events and heartbeats:
      // the round goes on after one heartbeat interval; later rounds wait on the same drain.
      this.draining ??= this.replicator
        .drain()
        .then(({ sent, bytes }) => void (sent > 0 && log('info', 'replicated', { objects: sent, bytes })), (err: Error) => log('warn', 'replication round failed; will retry', { error: err.message }))
        .finally(() => (this.draining = undefined));
      await Promise.race([this.draining, new Promise((r) => setTimeout(r, this.deps.heartbeatMs ?? 5000).unref())]);
      await this.heartbeat(auditHead);
    } catch (err) {
      log('warn', 'replication round failed; will retry', { error: (err as Error).message });
    }
    this.saveCursor();
    if (this.draining === undefined) this.deps.onTick?.();
  }

  /**
   * The health check for the systemd watchdog: why the control-stream follower counts as dead
   * (silent past FOLLOWER_DEAD_MS while the link is connected), or undefined while it is fine or
   * NATS is simply unreachable.
   */
  followerProblem(): string | undefined {
    const silentMs = this.followerSilentMs();
    if (silentMs <= FOLLOWER_DEAD_MS) return undefined;
    return `control stream follower silent for ${Math.round(silentMs / 1000)} s while connected (orders, receipts and requests are not arriving)`;
  }

  /**
   * How long the control follower has been silent while the link was connected: the follower's own
   * silence (on the link's clock, as its stall timer), counted only from when the link was last seen
   * to connect (on deps.now), so the time NATS was down is not counted; 0 while it is down.
   */
  private followerSilentMs(): number {
    if (!this.follower || !this.deps.link.connected) {
      this.connectedSince = undefined;
      return 0;
    }
    const now = this.deps.now();
    this.connectedSince ??= now;
    return Math.min(this.follower.silentMs, now - this.connectedSince);
  }

  /** Stops timers and the control stream, waits for a running order, saves the cursor. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.follower?.stop();
    await this.orders;
    await this.offsiteWork;
    this.saveCursor(true);
    this.announced.close();
  }

  private async onControl(subject: string, data: Uint8Array, seq: number): Promise<void> {
    const { site, log } = this.deps;
    this.cursor = seq + 1;
    if (subject === subjects.control(site, 'receipt')) {
      try {
        this.deps.book.accept(decode(data, 'mv.receipt.v1'), { site, controllerKey: this.deps.controllerKey });
      } catch (err) {
        log('warn', 'receipt refused', { seq, error: (err as Error).message });
      }
    } else if (subject === subjects.control(site, 'resend') || subject === subjects.control(site, 'reconcile')) {
      const kind = subject.endsWith('.resend') ? 'resend' : 'reconcile';
      this.offsiteWork = this.offsiteWork.then(() => this.requests.handle(kind, data));
    } else if (subject === subjects.control(site, 'order') || (subject === subjects.control(site, 'drill') && this.deps.drills)) {
      const drill = subject.endsWith('.drill');
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(data).toString('utf8'));
      } catch {
        value = undefined;
      }
      // Orders (restores and drills) run one after another, without holding up receipts.
      this.unhandled.add(seq);
      this.orders = this.orders.then(async () => {
        const verdict = drill ? await this.deps.drills!.handle(value, seq) : await this.deps.runner.handle(value, seq);
        // Handled (a handler that threw leaves it unhandled: delivered again after the restart).
        this.unhandled.delete(seq);
        const what = drill ? 'drill' : 'order';
        const redelivered = 'redelivered' in verdict && verdict.redelivered === true;
        log(verdict.state === 'refused' ? 'warn' : 'info', redelivered ? `${what} redelivered, not carried out again (${verdict.state})` : `${what} ${verdict.state}`, { seq, ...verdict });
        await this.deps.spool.flush(this.deps.link).catch(() => {});
      });
    }
  }

  /** Queues a mv.snapshot.v1 event once for every local snapshot not yet announced. */
  private async announce(): Promise<void> {
    const { repo, site, spool } = this.deps;
    const done = new Set(this.announced.records.map((r) => r.hash));
    for (const s of await repo.listSnapshots()) {
      if (done.has(s.hash)) continue;
      const objects = await repo.snapshotObjects(s.hash);
      spool.add('snapshot', validate({ type: 'mv.snapshot.v1', site, repo: repo.id, id: s.hash, store: s.store, job: s.job, time: s.time, files: s.files, bytes: s.bytes, needs: objects.length }, 'mv.snapshot.v1'));
      // What it needs off site, for the controller's retention (the first complete list counts there).
      // A tag longer than the message takes (a snapshot file holds 200; `backup --tag` now refuses
      // over 100) is cut: refused, it had failed every round, and nothing was replicated.
      const parts = Math.max(1, Math.ceil(objects.length / MAX_NEEDS_PER_PART));
      for (let part = 0; part < parts; part++) {
        const slice = objects.slice(part * MAX_NEEDS_PER_PART, (part + 1) * MAX_NEEDS_PER_PART);
        spool.add('needs', validate({ type: 'mv.snapshot-needs.v1', site, repo: repo.id, snapshot: s.hash, time: s.time, store: s.store, tags: (s.tags ?? []).map((t) => t.slice(0, MAX_TAG_LENGTH)), part, parts, objects: slice }, 'mv.snapshot-needs.v1'), `needs.${s.hash}.${part}`);
      }
      this.announced.append({ hash: s.hash });
    }
  }

  private async heartbeat(auditHead: { seq: number; hash: string } | undefined): Promise<void> {
    const { now, repo, site, link } = this.deps;
    if (now() - this.lastHeartbeat < (this.deps.heartbeatMs ?? 5000)) return;
    const snaps = await repo.listSnapshots();
    const backlog = this.replicator.backlog;
    const catchUp = await this.deps.catchUp?.().catch((err: Error) => void this.deps.log('warn', 'catch-up estimate unavailable', { error: err.message }));
    const detail = await this.deps.detail?.().catch((err: Error) => {
      this.deps.log('warn', 'heartbeat detail unavailable', { error: err.message });
      return undefined;
    });
    const hb: Heartbeat = validate(
      {
        type: 'mv.heartbeat.v1', site, sentAt: now(), agentVersion: this.deps.version,
        uptimeS: Math.floor((now() - this.startedAt) / 1000),
        repos: [{ id: repo.id, path: repo.path, snapshots: snaps.length, ...(snaps.length ? { lastSnapshotAt: Math.max(...snaps.map((s) => s.time)) } : {}) }],
        backlog: { objects: backlog.objects, bytes: backlog.bytes + this.deps.spool.pendingBytes(), ...(backlog.oldestAt ? { oldestAt: backlog.oldestAt } : {}), ...catchUp },
        ...(auditHead ? { audit: { seq: auditHead.seq, hash: auditHead.hash } } : {}),
        intervalS: Math.max(1, Math.round((this.deps.heartbeatMs ?? 5000) / 1000)),
        ...(detail?.disks ? { disks: detail.disks } : {}),
        ...(detail?.stores ? { stores: detail.stores } : {}),
      },
      'mv.heartbeat.v1',
    );
    await link.publish(subjects.event(site, 'heartbeat'), Buffer.from(JSON.stringify(hb)), { msgID: `${site}.hb.${hb.sentAt}` });
    this.lastHeartbeat = now();
  }

  /** Saves where the control stream is to be followed from after a restart: not past an order not yet handled. */
  private saveCursor(force = false): void {
    const cursor = Math.min(this.cursor, ...this.unhandled);
    if (cursor === this.cursorSaved && !force) return;
    writeFileAtomic(this.cursorFile, String(cursor));
    this.cursorSaved = cursor;
  }
}
