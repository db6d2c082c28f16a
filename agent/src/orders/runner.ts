/**
 * Carrying out restore orders. Every order is checked (protocol `checkOrder`: signature, site,
 * lifetime, expiry, single use) and its target confined to the configured restore roots before a
 * single file is touched; then it is recorded in the ledger, restored, verified file by file, and
 * each step is reported as mv.order-status.v1 (and the job as a mv.backup-log.v1 entry). In the
 * daemon, a restore into a record store's folder first waits for that store's running backup and
 * holds off new ones until it is done (status 'accepted' with a reason saying so while it waits).
 */
import { isAbsolute } from 'node:path';
import { randomUUID, type KeyObject } from 'node:crypto';
import {
  checkOrder, codes, MedvaultError, type BackupLog, type ErrorCode, type OrderStatus, type RestoreOrder,
} from '@medvault/protocol';
import type { OrderLedger } from './ledger.js';
import type { AuditSink } from '../audit/audit-log.js';
import { isWithin, realPathOf } from '../platform/real-path.js';

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
  ledger: Pick<OrderLedger, 'has' | 'seqOf' | 'record' | 'finish' | 'unfinished' | 'since'>;
  /** The engine that restores from `source`; undefined when that source is not available. */
  engine: (source: RestoreOrder['source']) => RestoreEngine | undefined;
  restoreRoots: string[];
  report: (status: OrderStatus) => void;
  log: (entry: BackupLog) => void;
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

/** Why an order's snapshot paths are unsafe ('..', '.', NUL, absolute), or undefined. */
export function unsafeOrderPath(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    if (p.includes('\0')) return `path ${JSON.stringify(p)} contains NUL`;
    if (p.startsWith('/')) return `path ${JSON.stringify(p)} is absolute; paths are inside the snapshot`;
    if (p.split('/').some((s) => s === '..' || s === '.')) return `path ${JSON.stringify(p)} has a '.' or '..' segment`;
  }
  return undefined;
}

export class OrderRunner {
  constructor(private readonly deps: OrderRunnerDeps) {}

  /**
   * Handles one message from the control stream at sequence `seq`. Never throws for a bad order:
   * it is refused, reported and the reason returned. A redelivery of an order already accepted at
   * this very sequence (a reconnect) is ignored silently.
   */
  async handle(value: unknown, seq: number): Promise<{ state: OrderStatus['state']; code?: ErrorCode; reason?: string }> {
    const { site, ledger, now } = this.deps;
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && ledger.seqOf(id) === seq) return { state: 'done' };
    const verdict = checkOrder(value, { site, controllerKey: this.deps.controllerKey, now: now(), seen: (i) => ledger.has(i), notBefore: ledger.since });
    if (!verdict.ok) return this.refuse(typeof id === 'string' ? id : undefined, verdict.code, verdict.reason);
    const order = verdict.order;
    const badPath = unsafeOrderPath(order.paths);
    if (badPath) return this.refuse(order.id, codes.ORDER_PATH, `order ${order.id}: ${badPath}`, order);
    const target = this.confine(order.target);
    if (typeof target !== 'string') return this.refuse(order.id, codes.ORDER_TARGET, `order ${order.id}: ${target.reason}`, order);
    const engine = this.deps.engine(order.source);
    if (!engine) return this.refuse(order.id, codes.ORDER_TARGET, `order ${order.id}: restore source '${order.source}' is not available on this agent`, order);
    ledger.record(order.id, seq, now());
    try {
      return await this.runRecorded(order, target, engine);
    } finally {
      ledger.finish(order.id, now());
    }
  }

  /**
   * Orders accepted before a crash or power cut that never finished: each is reported failed with
   * the reason (the restore may be partial; files already placed were verified by nothing), once.
   */
  recoverInterrupted(): string[] {
    const ids = this.deps.ledger.unfinished();
    for (const id of ids) {
      this.status(id, 'failed', {
        reason: { code: codes.STORAGE_FAILED, message: `order ${id}: the agent stopped (crash or power loss) while carrying it out; the target may hold a partial restore — order it again to finish and verify` },
      });
      this.deps.ledger.finish(id, this.deps.now());
    }
    return ids;
  }

  private async runRecorded(order: RestoreOrder, target: string, engine: RestoreEngine) {
    const seq = this.deps.ledger.seqOf(order.id) ?? null;
    this.deps.audit?.record({
      actor: { kind: 'user', id: order.requestedBy.user }, action: 'order.accept', object: `order:${order.id}`, result: 'ok',
      detail: { seq, snapshot: order.snapshot, target, mode: order.mode, paths: order.paths.slice(0, 20).join('|').slice(0, 2000), approvedBy: order.approvedBy?.user ?? null, kid: order.sig?.kid ?? null },
    });
    return this.run(order, target, engine);
  }

  private async run(order: RestoreOrder, target: string, engine: RestoreEngine) {
    const startedAt = this.deps.now();
    this.status(order.id, 'accepted');
    let lastProgress = 0;
    const hold = this.deps.holdStores?.(target, order.id);
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
      const ok = result.failed.length === 0 && result.verified === result.files;
      const shown = result.failed.slice(0, 1000);
      const problems = failureReasons(result);
      this.status(order.id, ok ? 'done' : 'failed', {
        result: { snapshot: result.snapshot, files: result.files, bytes: result.bytes, verified: result.verified, failed: shown, ...(result.source ? { source: result.source } : {}) },
        ...(ok ? {} : { reason: { code: problems[0]?.code ?? codes.VERIFY_FAILED, message: failureSummary(result, problems).slice(0, 2000) } }),
      });
      this.logJob(order, startedAt, ok ? 'ok' : 'failed', result, problems.slice(0, 1000));
      this.deps.audit?.record({
        actor: { kind: 'user', id: order.requestedBy.user }, action: 'restore', object: `order:${order.id}`, result: ok ? 'ok' : 'failed',
        detail: { snapshot: result.snapshot, target, files: result.files, bytes: result.bytes, verified: result.verified, failed: result.failed.length, key: 'repository master key (local)', source: result.source ?? 'local' },
      });
      return { state: ok ? ('done' as const) : ('failed' as const) };
    } catch (err) {
      const code = err instanceof MedvaultError ? err.code : codes.STORAGE_FAILED;
      const message = `order ${order.id}: ${(err as Error).message}`.slice(0, 2000);
      this.status(order.id, 'failed', { reason: { code, message } });
      this.logJob(order, startedAt, 'failed', undefined, [{ code, message }]);
      this.deps.audit?.record({ actor: { kind: 'user', id: order.requestedBy.user }, action: 'restore', object: `order:${order.id}`, result: 'failed', detail: { code, message: message.slice(0, 2000) } });
      return { state: 'failed' as const, code, reason: message };
    } finally {
      hold?.release();
    }
  }

  private refuse(id: string | undefined, code: ErrorCode, reason: string, order?: RestoreOrder) {
    if (id !== undefined && /^[0-9a-f-]{36}$/.test(id)) this.status(id, 'refused', { reason: { code, message: reason.slice(0, 2000) } });
    // Only a verified order names a person; anything else is recorded as from the network.
    this.deps.audit?.record({
      actor: order ? { kind: 'user', id: order.requestedBy.user } : { kind: 'system', id: 'control-stream' },
      action: 'order.refuse', object: `order:${typeof id === 'string' ? id.slice(0, 64) : '(none)'}`, result: 'refused',
      detail: { code, reason: reason.slice(0, 2000) },
    });
    return { state: 'refused' as const, code, reason };
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

  private status(orderId: string, state: OrderStatus['state'], extra: Partial<OrderStatus> = {}): void {
    this.deps.report({ type: 'mv.order-status.v1', orderId, site: this.deps.site, state, at: this.deps.now(), ...extra });
  }

  private logJob(order: RestoreOrder, startedAt: number, result: BackupLog['result'], r: RestoreOutcome | undefined, errors: BackupLog['errors']): void {
    this.deps.log({
      type: 'mv.backup-log.v1',
      site: this.deps.site,
      jobId: randomUUID(),
      job: 'restore',
      store: order.store ?? '*',
      actor: { kind: 'user', id: order.requestedBy.user },
      startedAt,
      endedAt: this.deps.now(),
      result,
      files: r?.files ?? 0,
      bytes: r?.bytes ?? 0,
      ...(r ? { snapshot: r.snapshot } : {}),
      orderId: order.id,
      errors: errors.slice(0, 1000),
    });
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
  return `${r.failed.length} file(s) not restored or not verified (${r.verified} of ${r.files} restored files verified; ${counts}): ${examples}`;
}

