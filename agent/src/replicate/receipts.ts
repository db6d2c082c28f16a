/**
 * The receipt book: every signed receipt the controller gave this site, kept durably. An object
 * with a receipt is off site and is never sent again; a snapshot is off site only when every object
 * it needs has one.
 */
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MedvaultError, codes, validate, verifyMessage, type ObjectKind, type Receipt } from '@medvault/protocol';
import { Journal } from '../state/journal.js';

const keyOf = (repo: string, kind: ObjectKind, hash: string) => `${repo}/${kind}/${hash}`;

export class ReceiptBook {
  private readonly held = new Set<string>();
  private constructor(records: Receipt[], private readonly journal?: Journal<Receipt>) {
    for (const r of records) this.held.add(keyOf(r.repo, r.kind, r.hash));
  }

  /** Opens the book for recording receipts (one process at a time: the daemon). */
  static open(stateDir: string): ReceiptBook {
    const journal = Journal.open<Receipt>(join(stateDir, 'receipts.jsonl'));
    return new ReceiptBook(journal.records, journal);
  }

  /** The receipts recorded so far, read-only (the daemon may be writing the book meanwhile). */
  static read(stateDir: string): Pick<ReceiptBook, 'has' | 'covers' | 'hashes' | 'size'> {
    return new ReceiptBook(Journal.read<Receipt>(join(stateDir, 'receipts.jsonl')));
  }

  /** Hashes of receipted objects of one kind in repository `repo`. */
  hashes(repo: string, kind: ObjectKind): string[] {
    const prefix = `${repo}/${kind}/`;
    return [...this.held].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  get size(): number {
    return this.held.size;
  }

  has(repo: string, kind: ObjectKind, hash: string): boolean {
    return this.held.has(keyOf(repo, kind, hash));
  }

  /**
   * Validates `value` as a receipt for `site` signed by the pinned controller key and records it.
   * Returns the receipt; throws MV_ERR_MESSAGE_INVALID or MV_ERR_SIGNATURE_INVALID otherwise.
   */
  accept(value: unknown, ctx: { site: string; controllerKey: KeyObject }): Receipt {
    const receipt = validate(value, 'mv.receipt.v1');
    verifyMessage(receipt, ctx.controllerKey);
    if (receipt.site !== ctx.site) {
      throw new MedvaultError(codes.MESSAGE_INVALID, `receipt for site ${receipt.site} arrived at site ${ctx.site}`);
    }
    if (!this.journal) throw new MedvaultError(codes.STORAGE_FAILED, 'receipt book is open read-only');
    if (!this.has(receipt.repo, receipt.kind, receipt.hash)) {
      this.journal.append(receipt);
      this.held.add(keyOf(receipt.repo, receipt.kind, receipt.hash));
    }
    return receipt;
  }

  /** True when every one of `objects` of repository `repo` has a receipt. */
  covers(repo: string, objects: Iterable<{ kind: ObjectKind; hash: string }>): boolean {
    for (const o of objects) if (!this.has(repo, o.kind, o.hash)) return false;
    return true;
  }

  close(): void {
    this.journal?.close();
  }
}
