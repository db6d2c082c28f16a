/**
 * The order ledger: every order id this agent has accepted, with the control-stream sequence it
 * arrived at. Written (fsync) before the order touches a file, so an order runs at most once, even
 * across restarts; a copy of a used order is refused as replayed. A second line marks the order
 * finished, so an order cut short by a crash is known at the next start.
 */
import { join } from 'node:path';
import { Journal } from '../state/journal.js';

interface Entry {
  id: string;
  seq?: number;
  at: number;
  finished?: true;
}

export class OrderLedger {
  private readonly bySeq = new Map<string, number>();
  private readonly open = new Set<string>();
  private constructor(private readonly journal: Journal<Entry>) {
    for (const e of journal.records) {
      if (e.finished) this.open.delete(e.id);
      else if (e.seq !== undefined) {
        this.bySeq.set(e.id, e.seq);
        this.open.add(e.id);
      }
    }
  }

  /** `file`: 'orders.jsonl' for restore orders, 'drills.jsonl' for drill orders. */
  static open(stateDir: string, file = 'orders.jsonl'): OrderLedger {
    return new OrderLedger(Journal.open<Entry>(join(stateDir, file)));
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
