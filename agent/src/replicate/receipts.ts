/**
 * The receipt book: every signed receipt the controller gave this site, kept durably. An object
 * with a receipt is off site and is never sent again; a snapshot is off site only when every object
 * it needs has one. A receipt can be revoked (the controller's scrub found the copy damaged, or a
 * reconcile found it missing off site): the revocation is journalled after the receipt, so the
 * journal replayed in order says what is off site now, and a later receipt holds again.
 */
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MedvaultError, codes, validate, verifyMessage, type ObjectKind, type Receipt } from '@medvault/protocol';
import { Journal } from '../state/journal.js';

const keyOf = (repo: string, kind: ObjectKind, hash: string) => `${repo}/${kind}/${hash}`;

/** A journal record undoing an earlier receipt: why (the controller's request id) and when. */
export interface Revocation {
  type: 'revoke';
  repo: string;
  kind: ObjectKind;
  hash: string;
  request: string;
  at: number;
}

type Entry = Receipt | Revocation;

export class ReceiptBook {
  private readonly held = new Set<string>();
  private constructor(records: Entry[], private readonly journal?: Journal<Entry>) {
    for (const r of records) {
      if (r.type === 'revoke') this.held.delete(keyOf(r.repo, r.kind, r.hash));
      else this.held.add(keyOf(r.repo, r.kind, r.hash));
    }
  }

  /** Opens the book for recording receipts (one process at a time: the daemon). */
  static open(stateDir: string): ReceiptBook {
    const journal = Journal.open<Entry>(join(stateDir, 'receipts.jsonl'));
    return new ReceiptBook(journal.records, journal);
  }

  /** The receipts recorded so far, read-only (the daemon may be writing the book meanwhile). */
  static read(stateDir: string): Pick<ReceiptBook, 'has' | 'covers' | 'hashes' | 'size'> {
    return new ReceiptBook(Journal.read<Entry>(join(stateDir, 'receipts.jsonl')));
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

  /**
   * Drops the receipts of `objects` of repository `repo` (durably, one fsync): they count as not
   * off site until a new receipt arrives. Returns those that had one.
   */
  revoke(repo: string, objects: Iterable<{ kind: ObjectKind; hash: string }>, why: { request: string; at: number }): Array<{ kind: ObjectKind; hash: string }> {
    if (!this.journal) throw new MedvaultError(codes.STORAGE_FAILED, 'receipt book is open read-only');
    const had = [...objects].filter((o) => this.has(repo, o.kind, o.hash));
    this.journal.append(...had.map((o): Revocation => ({ type: 'revoke', repo, kind: o.kind, hash: o.hash, request: why.request, at: why.at })));
    for (const o of had) this.held.delete(keyOf(repo, o.kind, o.hash));
    return had;
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
