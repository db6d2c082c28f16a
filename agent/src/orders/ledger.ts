/**
 * The order ledger: every order id this agent has accepted, with the control-stream sequence it
 * arrived at. Written (fsync) before the order touches a file, so an order runs at most once, even
 * across restarts; a copy of a used order is refused as replayed.
 *
 * Each accepted order then gets, in this order, each line fsynced:
 *   1. `{id, seq, at, by?, store?, plan?}`       accepted (who ordered it and, for a drill, its plan: what
 *                                                reports an order cut short)
 *   2. `{id, at, finished, outcome: {state, report?}}`  how it ended, with what tells the controller so
 *   3. `{id, at, reported}`                      that report is queued (the event spool, durable)
 * Line 2 is the agent's record of the outcome, and it is written before anything reports one, so
 * the report is always the outcome recorded here: an order with line 1 only was cut short (the
 * runner records it failed at the next start); one with line 2 but not 3 was cut short while being
 * reported, and is reported again from line 2. A redelivered order is answered from line 2.
 *
 * A ledger created empty starts with a `begun` line: orders issued before it are refused
 * (`since`, checkOrder's notBefore). A new or replaced appliance replays the control stream from
 * the start for its receipts, and must not carry out again what its predecessor already did.
 */
import { join } from 'node:path';
import { Journal } from '../state/journal.js';

/** How an accepted order ended, as the ledger records it before it is reported. */
export interface OrderOutcome {
  /** Restore orders: 'done' or 'failed'; drill orders: 'passed', 'failed' or 'interrupted'. */
  state: string;
  /** What reports it (the runner's own shape, stored as JSON); absent: nothing to report again. */
  report?: unknown;
}

/** What the ledger keeps of an accepted order. */
export interface AcceptedOrder {
  id: string;
  seq: number;
  /** When it was accepted. */
  at: number;
  /** Who ordered it. */
  by?: string;
  store?: string;
  /** Drill orders: what the drill was to do, so one cut short can be reported as such. */
  plan?: unknown;
}

/** What an order's acceptance says of it beyond id, seq and time. */
type About = Pick<AcceptedOrder, 'by' | 'store' | 'plan'>;

/** The accepted order as recorded and as replayed: an empty `by` or `store` and an undefined `plan` are left out. */
function acceptedOrder(id: string, seq: number, at: number, about: About): AcceptedOrder {
  return { id, seq, at, ...(about.by ? { by: about.by } : {}), ...(about.store ? { store: about.store } : {}), ...(about.plan !== undefined ? { plan: about.plan } : {}) };
}

interface Entry {
  id: string;
  seq?: number;
  at: number;
  by?: string;
  store?: string;
  plan?: unknown;
  finished?: true;
  outcome?: OrderOutcome;
  reported?: true;
  begun?: true;
}

export class OrderLedger {
  private readonly accepted = new Map<string, AcceptedOrder>();
  private readonly open = new Set<string>();
  private readonly outcomes = new Map<string, string>();
  /** Outcomes recorded whose report is not known to be queued. */
  private readonly unsent = new Map<string, OrderOutcome>();
  /** When this ledger began (orders issued earlier are refused); undefined for a ledger from before this rule. */
  readonly since: number | undefined;
  private constructor(private readonly journal: Journal<Entry>, now: number) {
    if (journal.records.length === 0) journal.append({ id: '', at: now, begun: true });
    this.since = journal.records.find((e) => e.begun)?.at;
    for (const e of journal.records) {
      if (e.begun) continue;
      if (e.reported) this.unsent.delete(e.id);
      else if (e.finished) {
        this.open.delete(e.id);
        // A line without an outcome was written by an agent from before outcomes were recorded.
        if (e.outcome) this.outcomes.set(e.id, e.outcome.state);
        if (e.outcome?.report !== undefined) this.unsent.set(e.id, e.outcome);
      } else if (e.seq !== undefined) {
        this.accepted.set(e.id, acceptedOrder(e.id, e.seq, e.at, e));
        this.open.add(e.id);
      }
    }
  }

  /** `file`: 'orders.jsonl' for restore orders, 'drills.jsonl' for drill orders. */
  static open(stateDir: string, file = 'orders.jsonl', now = Date.now()): OrderLedger {
    return new OrderLedger(Journal.open<Entry>(join(stateDir, file)), now);
  }

  has(id: string): boolean {
    return this.accepted.has(id);
  }

  /** The control-stream sequence at which `id` was accepted, if it was. */
  seqOf(id: string): number | undefined {
    return this.accepted.get(id)?.seq;
  }

  /** The accepted order `id`, if it was accepted. */
  acceptedOrder(id: string): AcceptedOrder | undefined {
    return this.accepted.get(id);
  }

  /** Records `id` accepted at sequence `seq` (fsync): from now on it is never carried out again. */
  record(id: string, seq: number, at: number, about: About = {}): void {
    const a = acceptedOrder(id, seq, at, about);
    this.journal.append({ ...a });
    this.accepted.set(id, a);
    this.open.add(id);
  }

  /**
   * Marks an accepted order carried out to the end (fsync), with its outcome when known. MUST be
   * called before the outcome is reported: an outcome with a `report` counts as unsent until
   * `reported`. Does nothing for an order not open.
   */
  finish(id: string, at: number, outcome?: OrderOutcome): void {
    if (!this.open.has(id)) return;
    this.journal.append({ id, at, finished: true, ...(outcome ? { outcome } : {}) });
    this.open.delete(id);
    if (outcome) this.outcomes.set(id, outcome.state);
    if (outcome?.report !== undefined) this.unsent.set(id, outcome);
  }

  /** Marks the report of `id`'s outcome queued (fsync). */
  reported(id: string, at: number): void {
    if (!this.unsent.delete(id)) return;
    this.journal.append({ id, at, reported: true });
  }

  /** How `id` ended, if it ended and the outcome was recorded. */
  outcomeOf(id: string): string | undefined {
    return this.outcomes.get(id);
  }

  /** True while `id` is accepted and has not ended. */
  isOpen(id: string): boolean {
    return this.open.has(id);
  }

  /** Orders accepted but never finished: the agent stopped while carrying them out. */
  unfinished(): string[] {
    return [...this.open];
  }

  /** Outcomes recorded whose report may not have been queued: the agent stopped in between. */
  unreported(): { id: string; outcome: OrderOutcome }[] {
    return [...this.unsent].map(([id, outcome]) => ({ id, outcome }));
  }

  close(): void {
    this.journal.close();
  }
}
