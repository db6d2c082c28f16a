/**
 * The order ledger: every order id this agent has accepted, with the control-stream sequence it
 * arrived at. Written (fsync) before the order touches a file, so an order runs at most once, even
 * across restarts; a copy of a used order is refused as replayed. A second line marks the order
 * finished, so an order cut short by a crash is known at the next start.
 *
 * A ledger created empty starts with a `begun` line: orders issued before it are refused
 * (`since`, checkOrder's notBefore). A new or replaced appliance replays the control stream from
 * the start for its receipts, and must not carry out again what its predecessor already did.
 */
import { join } from 'node:path';
import { Journal } from '../state/journal.js';

interface Entry {
  id: string;
  seq?: number;
  at: number;
  finished?: true;
  begun?: true;
}

export class OrderLedger {
  private readonly bySeq = new Map<string, number>();
  private readonly open = new Set<string>();
  /** When this ledger began (orders issued earlier are refused); undefined for a ledger from before this rule. */
  readonly since: number | undefined;
  private constructor(private readonly journal: Journal<Entry>, now: number) {
    if (journal.records.length === 0) journal.append({ id: '', at: now, begun: true });
    this.since = journal.records.find((e) => e.begun)?.at;
    for (const e of journal.records) {
      if (e.begun) continue;
      if (e.finished) this.open.delete(e.id);
      else if (e.seq !== undefined) {
        this.bySeq.set(e.id, e.seq);
        this.open.add(e.id);
      }
    }
  }

  /** `file`: 'orders.jsonl' for restore orders, 'drills.jsonl' for drill orders. */
  static open(stateDir: string, file = 'orders.jsonl', now = Date.now()): OrderLedger {
    return new OrderLedger(Journal.open<Entry>(join(stateDir, file)), now);
  }

  has(id: string): boolean {
    return this.bySeq.has(id);
  }

  /** The control-stream sequence at which `id` was accepted, if it was. */
  seqOf(id: string): number | undefined {
    return this.bySeq.get(id);
  }

  record(id: string, seq: number, at: number): void {
    this.journal.append({ id, seq, at });
    this.bySeq.set(id, seq);
    this.open.add(id);
  }

  /** Marks an accepted order as carried out to the end (whatever its outcome). */
  finish(id: string, at: number): void {
    if (!this.open.delete(id)) return;
    this.journal.append({ id, at, finished: true });
  }

  /** Orders accepted but never finished: the agent stopped while carrying them out. */
  unfinished(): string[] {
    return [...this.open];
  }

  close(): void {
    this.journal.close();
  }
}
