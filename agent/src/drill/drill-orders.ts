/**
 * Drill orders from the controller (`mv.v1.ctl.<site>.drill`): each is checked like a restore order
 * (protocol `checkOrder` with type mv.drill-order.v1: signature, site, lifetime, expiry, single use)
 * and recorded in its own ledger (`drills.jsonl`, fsync) before anything runs, so it runs at most once,
 * even across restarts. The daemon runs drills and restore orders one at a time. An order refused
 * after its signature checked out (expired, not yet valid, replayed) is reported to the controller
 * as a failed mv.drill-result.v1 with the reason; a forged or foreign one only in the audit log.
 * A drill cut short by a stop (crash, power loss, kill) is reported failed the same way at the next
 * start, from the plan its ledger line kept: recorded in the ledger, then reported, then marked so
 * (orders/ledger.ts), so a kill in between reports it again rather than never.
 */
import type { KeyObject } from 'node:crypto';
import { checkOrder, codes, validate, type DrillOrder, type DrillResult, type ErrorCode } from '@medvault/protocol';
import type { OrderLedger } from '../orders/ledger.js';
import type { AuditSink } from '../audit/audit-log.js';
import type { DrillPlan, DrillRunner } from './drill-runner.js';

export interface DrillOrdersDeps {
  site: string;
  controllerKey: KeyObject;
  ledger: Pick<OrderLedger, 'has' | 'seqOf' | 'record' | 'finish' | 'unfinished' | 'since' | 'outcomeOf' | 'acceptedOrder' | 'unreported' | 'reported'>;
  runner: Pick<DrillRunner, 'run' | 'notRun' | 'report'>;
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
        this.d.runner.report(this.d.runner.notRun(planOf(validate(value, 'mv.drill-order.v1')), { code: verdict.code, message: `refused: ${verdict.reason}` }));
      }
      return { state: 'refused', code: verdict.code, reason: verdict.reason };
    }
    const o = verdict.order;
    ledger.record(o.id, seq, now(), { by: o.requestedBy.id, store: o.store, plan: planOf(o) });
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

  /**
   * At start-up: reports again what was recorded but not reported, then concludes the drill orders
   * accepted before a stop that never finished: 'interrupted' in the ledger, a failed result with
   * the reason to the controller (their scratch space goes with the next drill). Returns their ids.
   */
  recoverInterrupted(): string[] {
    const { ledger, runner, now } = this.d;
    for (const { id, outcome } of ledger.unreported()) {
      runner.report(outcome.report as DrillResult);
      ledger.reported(id, now());
    }
    const ids = ledger.unfinished();
    for (const id of ids) {
      const accepted = ledger.acceptedOrder(id);
      // A ledger line from an agent before plans were kept: recorded, nothing to report it with.
      const report = accepted?.plan === undefined ? undefined : runner.notRun(accepted.plan as DrillPlan, {
        code: codes.STORAGE_FAILED,
        message: `drill ${id}: the agent stopped (crash or power loss) while running it; order it again`,
      }, accepted.at);
      ledger.finish(id, now(), { state: 'interrupted', ...(report ? { report } : {}) });
      if (report) {
        runner.report(report);
        ledger.reported(id, now());
      }
    }
    return ids;
  }
}

const planOf = (o: DrillOrder): DrillPlan => ({ id: o.id, store: o.store, snapshot: o.snapshot, sample: o.sample, sources: o.sources, requestedBy: o.requestedBy });
