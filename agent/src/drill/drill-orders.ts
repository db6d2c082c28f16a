/**
 * Drill orders from the controller (`mv.v1.ctl.<site>.drill`): each is checked like a restore order
 * (protocol `checkOrder` with type mv.drill-order.v1: signature, site, lifetime, expiry, single use)
 * and recorded in its own ledger (`drills.jsonl`, fsync) before anything runs, so it runs at most once,
 * even across restarts. The daemon runs drills and restore orders one at a time. An order refused
 * after its signature checked out (expired, not yet valid, replayed) is reported to the controller
 * as a failed mv.drill-result.v1 with the reason; a forged or foreign one only in the audit log.
 */
import type { KeyObject } from 'node:crypto';
import { checkOrder, codes, validate, type DrillOrder, type ErrorCode } from '@medvault/protocol';
import type { OrderLedger } from '../orders/ledger.js';
import type { AuditSink } from '../audit/audit-log.js';
import type { DrillPlan, DrillRunner } from './drill-runner.js';

export interface DrillOrdersDeps {
  site: string;
  controllerKey: KeyObject;
  ledger: Pick<OrderLedger, 'has' | 'seqOf' | 'record' | 'finish' | 'unfinished' | 'since' | 'outcomeOf'>;
  runner: Pick<DrillRunner, 'run' | 'refused'>;
  now: () => number;
  audit?: AuditSink;
}

/** Refusals that happen after the signature verified: the order is the controller's, so it hears why. */
const REPORTED: readonly string[] = [codes.ORDER_EXPIRED, codes.ORDER_NOT_YET_VALID, codes.ORDER_REPLAYED, codes.ORDER_LIFETIME];

export class DrillOrders {
  constructor(private readonly d: DrillOrdersDeps) {}

  /**
   * Handles one drill order at control-stream sequence `seq`; never throws for a bad order (refused,
   * audited, reason returned). A redelivery of a drill accepted at this very sequence is not run
   * again: the verdict is the outcome the ledger recorded ('done' when it recorded none).
   */
  async handle(value: unknown, seq: number): Promise<{ state: 'passed' | 'failed' | 'interrupted' | 'refused' | 'done'; code?: ErrorCode; reason?: string; redelivered?: true }> {
    const { ledger, now } = this.d;
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && ledger.seqOf(id) === seq) {
      const outcome = ledger.outcomeOf(id);
      return { state: outcome === 'passed' || outcome === 'failed' || outcome === 'interrupted' ? outcome : 'done', redelivered: true };
    }
    const verdict = checkOrder(value, { site: this.d.site, controllerKey: this.d.controllerKey, now: now(), seen: (i) => ledger.has(i), notBefore: ledger.since }, 'mv.drill-order.v1');
    if (!verdict.ok) {
      this.d.audit?.record({
        actor: { kind: 'system', id: 'control-stream' }, action: 'drill.refuse', object: `drill:${typeof id === 'string' ? id.slice(0, 64) : '(none)'}`, result: 'refused',
        detail: { code: verdict.code, reason: verdict.reason.slice(0, 2000) },
      });
      if (REPORTED.includes(verdict.code)) {
        this.d.runner.refused(planOf(validate(value, 'mv.drill-order.v1')), { code: verdict.code, message: `refused: ${verdict.reason}` });
      }
      return { state: 'refused', code: verdict.code, reason: verdict.reason };
    }
    const o = verdict.order;
    ledger.record(o.id, seq, now());
    this.d.audit?.record({
      actor: o.requestedBy, action: 'drill.accept', object: `drill:${o.id}`, result: 'ok',
      detail: { seq, store: o.store, snapshot: o.snapshot, sample: o.sample, sources: o.sources.join(','), kid: o.sig?.kid ?? null },
    });
    let result = 'failed';
    try {
      const r = await this.d.runner.run(planOf(o));
      result = r.result;
      return { state: r.result, ...(r.error ? { code: r.error.code as ErrorCode, reason: r.error.message } : {}) };
    } finally {
      ledger.finish(o.id, now(), { state: result });
    }
  }

  /** Drill orders accepted before a crash that never finished, recorded 'interrupted' (their scratch space goes with the next drill). */
  recoverInterrupted(): string[] {
    const ids = this.d.ledger.unfinished();
    for (const id of ids) this.d.ledger.finish(id, this.d.now(), { state: 'interrupted' });
    return ids;
  }
}

const planOf = (o: DrillOrder): DrillPlan => ({ id: o.id, store: o.store, snapshot: o.snapshot, sample: o.sample, sources: o.sources, requestedBy: o.requestedBy });
