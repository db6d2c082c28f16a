/**
 * Carrying out restore orders. Every order is checked (protocol `checkOrder`: signature, site,
 * lifetime, expiry, single use) and its target confined to the configured restore roots before a
 * single file is touched; then it is recorded in the ledger, restored, verified file by file, and
 * each step is reported as mv.order-status.v1 (and the job as a mv.backup-log.v1 entry). In the
 * daemon, a restore into a record store's folder first waits for that store's running backup and
 * holds off new ones until it is done (status 'accepted' with a reason saying so while it waits).
 *
 * How an order ends is decided once and said the same everywhere (the `Conclusion`):
 *   1. the outcome, with the final status, the backup-log entry and the audit record that report
 *      it, is written to the ledger (fsync): the agent's own record of the order;
 *   2. the final status and the log entry are queued on the event spool under ids fixed by the
 *      order (`order.<id>.final`, `order.<id>.log`), and the audit record is written;
 *   3. the ledger marks it reported.
 * After a kill at any point, the next start (recoverInterrupted) reports again, under the same
 * spool ids, what step 1 recorded (JetStream drops the copies it already has; the audit record
 * may then stand twice, the same both times), and concludes an order with no outcome as failed
 * (interrupted). A redelivered order is never run again: it is answered with the recorded outcome.
 */
import { isAbsolute } from 'node:path';
import { randomUUID, type KeyObject } from 'node:crypto';
import {
  checkOrder, codes, formatCount, unsafeSnapshotPath, MedvaultError, type BackupLog, type ErrorCode, type OrderStatus, type RestoreOrder,
} from '@medvault/protocol';
import type { AcceptedOrder, OrderLedger } from './ledger.js';
import type { AgentAuditInput, AuditSink } from '../audit/audit-log.js';
import { isWithin, realPathOf } from '../platform/real-path.js';
import { NOT_OVERWRITTEN } from '../restore/file-writer.js';

export interface RestoreProgress {
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
}

export interface RestoreOutcome {
  snapshot: string;
  files: number;
  bytes: number;
  verified: number;
  failed: string[];
  /** Why each failed file failed (exists in the target, data corrupt, pack missing, …). */
  errors?: { path: string; code: string; message: string }[];
  /** Where it was read from (an 'auto' order says which it used). */
  source?: 'local' | 'offsite';
}

/** What the runner needs of the restore engine. */
export interface RestoreEngine {
  restore(opts: {
    snapshot: string;
    store?: string;
    paths: string[];
    target: string;
    mode: 'new' | 'overwrite';
    onProgress?: (p: RestoreProgress) => void;
  }): Promise<RestoreOutcome>;
}

/** Record stores held for a restore that writes into them (the daemon's JobRunner.hold). */
export interface StoreHold {
  /** The held stores whose backup was running: `ready` waits for it. */
  busy: string[];
  /** Resolves once no backup of a held store runs; none starts until `release`. */
  ready: Promise<void>;
  /** Ends the hold; called once the restore ended, however it ended. */
  release(): void;
}

export interface OrderRunnerDeps {
  site: string;
  controllerKey: KeyObject;
  ledger: Pick<OrderLedger, 'has' | 'seqOf' | 'record' | 'finish' | 'unfinished' | 'since' | 'acceptedOrder' | 'reported' | 'unreported' | 'outcomeOf' | 'isOpen'>;
  /** The engine that restores from `source`; undefined when that source is not available. */
  engine: (source: RestoreOrder['source']) => RestoreEngine | undefined;
  restoreRoots: string[];
  /** Queues a status for the controller (durably); `id`: a spool id fixed by the order, for a report that may be made again. */
  report: (status: OrderStatus, id?: string) => void;
  /** Queues a backup-log entry (durably); `id` as for `report`. */
  log: (entry: BackupLog, id?: string) => void;
  now: () => number;
  progressEveryMs?: number;
  /** The agent's audit trail: every order accepted or refused (and why), and every restore. */
  audit?: AuditSink;
  /**
   * In the daemon: holds the backups of the record stores a restore into `target` (the confined
   * real path) writes into, so no snapshot captures a half-restored store; undefined or a hold of
   * nothing for any other target.
   */
  holdStores?: (target: string, orderId: string) => StoreHold;
}

/** How an order ended, as recorded in the ledger before it is reported (replayed from there after a crash). */
interface Conclusion {
  status: OrderStatus;
  log: BackupLog;
  audit: AgentAuditInput;
}

/** What `handle` says of a message: the state it left the order in, and why when not done. */
export interface OrderVerdict {
  state: OrderStatus['state'];
  code?: ErrorCode;
  reason?: string;
  /** The order was accepted at this sequence before (a reconnect, or a restart): answered from the ledger, not run again. */
  redelivered?: true;
}

/** Spool ids of an order's final status and log entry: a report made again after a crash is the same message. */
const finalStatusId = (orderId: string) => `order.${orderId}.final`;
const logEntryId = (orderId: string) => `order.${orderId}.log`;

export class OrderRunner {
  constructor(private readonly deps: OrderRunnerDeps) {}

  /**
   * Handles one message from the control stream at sequence `seq`. Never throws for a bad order:
   * it is refused, reported and the reason returned. A redelivery of an order already accepted at
   * this very sequence (a reconnect, a restart) is not run again: the verdict is its recorded outcome.
   */
  async handle(value: unknown, seq: number): Promise<OrderVerdict> {
    const { site, ledger, now } = this.deps;
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && ledger.seqOf(id) === seq) return this.redelivered(id, seq);
    const verdict = checkOrder(value, { site, controllerKey: this.deps.controllerKey, now: now(), seen: (i) => ledger.has(i), notBefore: ledger.since });
    if (!verdict.ok) return this.refuse(typeof id === 'string' ? id : undefined, verdict.code, verdict.reason);
    const order = verdict.order;
    const badPath = unsafeSnapshotPath(order.paths);
    if (badPath) return this.refuse(order.id, codes.ORDER_PATH, `order ${order.id}: ${badPath}`, order);
    const target = this.confine(order.target);
    if (typeof target !== 'string') return this.refuse(order.id, codes.ORDER_TARGET, `order ${order.id}: ${target.reason}`, order);
    const engine = this.deps.engine(order.source);
    if (!engine) return this.refuse(order.id, codes.ORDER_TARGET, `order ${order.id}: restore source '${order.source}' is not available on this agent`, order);
    ledger.record(order.id, seq, now(), { by: order.requestedBy.user, ...(order.store ? { store: order.store } : {}) });
    return this.runRecorded(order, target, engine);
  }

  /**
   * At start, before the control stream is followed. Outcomes recorded whose report may not have
   * been queued (the agent stopped in between) are reported again, as recorded. Orders accepted
   * that never got an outcome (a crash or power cut while carrying them out) are concluded failed
   * with the reason (the restore may be partial; files already placed were verified by nothing),
   * reported, logged and audited once. Returns the ids of those.
   */
  recoverInterrupted(): string[] {
    const { ledger } = this.deps;
    for (const { id, outcome } of ledger.unreported()) {
      this.publish(outcome.report as Conclusion);
      ledger.reported(id, this.deps.now());
    }
    const ids = ledger.unfinished();
    for (const id of ids) this.conclude(this.interrupted(ledger.acceptedOrder(id) ?? { id, seq: 0, at: this.deps.now() }));
    return ids;
  }

  private redelivered(id: string, seq: number): OrderVerdict {
    const { ledger } = this.deps;
    const outcome = ledger.outcomeOf(id);
    const how = outcome ? `ended ${outcome}` : ledger.isOpen(id) ? 'is being carried out' : 'ended (its outcome is not in the ledger: recorded by an older agent)';
    const state = outcome === 'done' || outcome === 'failed' ? outcome : 'accepted';
    return { state, redelivered: true, reason: `order ${id} was accepted at control-stream sequence ${seq} and ${how}; the redelivered copy is not carried out again` };
  }

  private async runRecorded(order: RestoreOrder, target: string, engine: RestoreEngine): Promise<OrderVerdict> {
    const seq = this.deps.ledger.seqOf(order.id) ?? null;
    this.deps.audit?.record({
      actor: { kind: 'user', id: order.requestedBy.user }, action: 'order.accept', object: `order:${order.id}`, result: 'ok',
      detail: { seq, snapshot: order.snapshot, target, mode: order.mode, paths: order.paths.slice(0, 20).join('|').slice(0, 2000), approvedBy: order.approvedBy?.user ?? null, kid: order.sig?.kid ?? null },
    });
    return this.run(order, target, engine);
  }

  private async run(order: RestoreOrder, target: string, engine: RestoreEngine): Promise<OrderVerdict> {
    const startedAt = this.deps.now();
    this.status(order.id, 'accepted');
    let lastProgress = 0;
    const hold = this.deps.holdStores?.(target, order.id);
    try {
      let ended: Conclusion;
      try {
        if (hold && hold.busy.length > 0) {
          const stores = hold.busy.join(', ');
          this.status(order.id, 'accepted', { reason: { code: codes.REPO_LOCKED, message: `waiting for the backup of store ${stores} running now to finish: the restore writes into that store's folder` } });
          await hold.ready;
        }
        const result = await engine.restore({
          snapshot: order.snapshot,
          ...(order.store ? { store: order.store } : {}),
          paths: order.paths,
          target,
          mode: order.mode,
          onProgress: (p) => {
            const t = this.deps.now();
            if (t - lastProgress < (this.deps.progressEveryMs ?? 500)) return;
            lastProgress = t;
            this.status(order.id, 'running', { progress: p });
          },
        });
        ended = this.restored(order, target, startedAt, result);
      } catch (err) {
        const code = err instanceof MedvaultError ? err.code : codes.STORAGE_FAILED;
        // the order's person as the ledger records it (`by`): a RestoreOrder has none, and the log and audit said 'unknown'
        ended = this.ending({ id: order.id, by: order.requestedBy.user, ...(order.store ? { store: order.store } : {}) }, startedAt, { code, message: `order ${order.id}: ${(err as Error).message}`.slice(0, 2000) });
      }
      this.conclude(ended);
      const { state, reason } = ended.status;
      return { state, ...(reason ? { code: reason.code as ErrorCode, reason: reason.message } : {}) };
    } finally {
      hold?.release();
    }
  }

  /** The conclusion of a restore that ran to its end: done when every file restored and verified. */
  private restored(order: RestoreOrder, target: string, startedAt: number, result: RestoreOutcome): Conclusion {
    const ok = result.failed.length === 0 && result.verified === result.files;
    const problems = failureReasons(result);
    const status = this.statusOf(order.id, ok ? 'done' : 'failed', {
      result: { snapshot: result.snapshot, files: result.files, bytes: result.bytes, verified: result.verified, failed: result.failed.slice(0, 1000), ...(result.source ? { source: result.source } : {}) },
      ...(ok ? {} : { reason: { code: problems[0]?.code ?? codes.VERIFY_FAILED, message: failureSummary(result, problems).slice(0, 2000) } }),
    });
    return {
      status,
      log: this.logEntry({ id: order.id, by: order.requestedBy.user, ...(order.store ? { store: order.store } : {}) }, startedAt, ok ? 'ok' : 'failed', result, problems.slice(0, 1000)),
      audit: {
        actor: { kind: 'user', id: order.requestedBy.user }, action: 'restore', object: `order:${order.id}`, result: ok ? 'ok' : 'failed', at: status.at,
        detail: { snapshot: result.snapshot, target, files: result.files, bytes: result.bytes, verified: result.verified, failed: result.failed.length, key: 'repository master key (local)', source: result.source ?? 'local' },
      },
    };
  }

  /** The conclusion of an order that failed as a whole (`reason`): no restore result. */
  private ending(order: Pick<AcceptedOrder, 'id' | 'by' | 'store'>, startedAt: number, reason: { code: string; message: string }): Conclusion {
    const status = this.statusOf(order.id, 'failed', { reason });
    return {
      status,
      log: this.logEntry(order, startedAt, 'failed', undefined, [reason]),
      audit: { actor: { kind: 'user', id: order.by ?? 'unknown' }, action: 'restore', object: `order:${order.id}`, result: 'failed', at: status.at, detail: { code: reason.code, message: reason.message } },
    };
  }

  /** The conclusion of an order accepted before the agent stopped (crash or power loss) that never ended. */
  private interrupted(order: AcceptedOrder): Conclusion {
    return this.ending(order, order.at, {
      code: codes.STORAGE_FAILED,
      message: `order ${order.id}: the agent stopped (crash or power loss) while carrying it out; the target may hold a partial restore — order it again to finish and verify`,
    });
  }

  /** Records the outcome in the ledger, then reports it: see the top of this file. */
  private conclude(c: Conclusion): void {
    const id = c.status.orderId;
    this.deps.ledger.finish(id, this.deps.now(), { state: c.status.state, report: c });
    this.publish(c);
    this.deps.ledger.reported(id, this.deps.now());
  }

  private publish(c: Conclusion): void {
    this.deps.report(c.status, finalStatusId(c.status.orderId));
    this.deps.log(c.log, logEntryId(c.status.orderId));
    this.deps.audit?.record(c.audit);
  }

  private refuse(id: string | undefined, code: ErrorCode, reason: string, order?: RestoreOrder): OrderVerdict {
    if (id !== undefined && /^[0-9a-f-]{36}$/.test(id)) this.status(id, 'refused', { reason: { code, message: reason.slice(0, 2000) } });
    // Only a verified order names a person; anything else is recorded as from the network.
    this.deps.audit?.record({
      actor: order ? { kind: 'user', id: order.requestedBy.user } : { kind: 'system', id: 'control-stream' },
      action: 'order.refuse', object: `order:${typeof id === 'string' ? id.slice(0, 64) : '(none)'}`, result: 'refused',
      detail: { code, reason: reason.slice(0, 2000) },
    });
    return { state: 'refused', code, reason };
  }

  /**
   * The real path the restore may write to, or why not: `target` must be absolute and lie inside
   * one of the restore roots after resolving every symlink of its existing ancestors.
   */
  private confine(target: string): string | { reason: string } {
    if (!isAbsolute(target) || target.includes('\0')) return { reason: `target ${JSON.stringify(target)} is not an absolute path` };
    if (this.deps.restoreRoots.length === 0) return { reason: 'this agent has no restore_roots configured, so it accepts no restore target' };
    const real = realPathOf(target);
    for (const root of this.deps.restoreRoots) if (isWithin(real, realPathOf(root))) return real;
    return { reason: `target ${target} is outside the restore roots (${this.deps.restoreRoots.join(', ')})` };
  }

  private statusOf(orderId: string, state: OrderStatus['state'], extra: Partial<OrderStatus> = {}): OrderStatus {
    return { type: 'mv.order-status.v1', orderId, site: this.deps.site, state, at: this.deps.now(), ...extra };
  }

  private status(orderId: string, state: OrderStatus['state'], extra: Partial<OrderStatus> = {}): void {
    this.deps.report(this.statusOf(orderId, state, extra));
  }

  private logEntry(order: Pick<AcceptedOrder, 'id' | 'by' | 'store'>, startedAt: number, result: BackupLog['result'], r: RestoreOutcome | undefined, errors: BackupLog['errors']): BackupLog {
    return {
      type: 'mv.backup-log.v1',
      site: this.deps.site,
      jobId: randomUUID(),
      job: 'restore',
      store: order.store ?? '*',
      actor: { kind: 'user', id: order.by ?? 'unknown' },
      startedAt,
      endedAt: this.deps.now(),
      result,
      files: r?.files ?? 0,
      bytes: r?.bytes ?? 0,
      ...(r ? { snapshot: r.snapshot } : {}),
      orderId: order.id,
      errors: errors.slice(0, 1000),
    };
  }
}

/** The per-file reasons of a failed restore; files without one are those that failed verification. */
function failureReasons(r: RestoreOutcome): { code: string; message: string; path: string }[] {
  const byPath = new Map((r.errors ?? []).filter((e) => e.code !== 'SKIPPED').map((e) => [e.path, e]));
  const out = r.failed.map((path) => {
    const e = byPath.get(path);
    return { path, code: (e?.code ?? codes.VERIFY_FAILED).slice(0, 64), message: (e?.message ?? `${path}: restored file did not verify`).slice(0, 2000) };
  });
  for (const [path, e] of byPath) if (!r.failed.includes(path)) out.push({ path, code: e.code.slice(0, 64), message: e.message.slice(0, 2000) });
  return out;
}

function failureSummary(r: RestoreOutcome, problems: { code: string; message: string }[]): string {
  const byCode = new Map<string, number>();
  for (const p of problems) byCode.set(p.code, (byCode.get(p.code) ?? 0) + 1);
  const counts = [...byCode].map(([c, n]) => `${n} ${c}`).join(', ');
  const examples = problems.slice(0, 3).map((p) => p.message).join('; ');
  // before the examples: the message is cut at 2,000 characters
  const there = problems.filter((p) => p.message.endsWith(NOT_OVERWRITTEN)).length;
  const hint = there > 0 ? `; ${there} already ${there === 1 ? 'exists' : 'exist'} in the target: order the restore into an empty folder, or with --overwrite` : '';
  return `${formatCount(r.failed.length, 'file')} not restored or not verified (${r.verified} of ${r.files} restored files verified; ${counts})${hint}: ${examples}`;
}

