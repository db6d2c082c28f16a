/**
 * The order ledger: every order id this agent has accepted, with the control-stream sequence it
 * arrived at. Written (fsync) before the order touches a file, so an order runs at most once, even
 * across restarts; a copy of a used order is refused as replayed.
 */
import { join } from 'node:path';
import { Journal } from '../state/journal.js';

interface Entry {
  id: string;
  seq: number;
  at: number;
}

export class OrderLedger {
  private readonly bySeq = new Map<string, number>();
  private constructor(private readonly journal: Journal<Entry>) {
    for (const e of journal.records) this.bySeq.set(e.id, e.seq);
  }

  static open(stateDir: string): OrderLedger {
    return new OrderLedger(Journal.open<Entry>(join(stateDir, 'orders.jsonl')));
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
  }

  close(): void {
    this.journal.close();
  }
}
