/**
 * What is off site, per site: a projection of the signed receipts on MV_CONTROL (a receipt is
 * issued only after the copy in MV_OFFSITE was read back and verified), and of the controller's
 * resend requests (mv.resend.v1: the scrub found those copies damaged and purged them). A damaged
 * object stays listed, flagged, so the Ingestor stores a resent copy again under new message ids
 * (the held entry with no complete copy is exactly its "receipted copy gone" case) instead of taking
 * it as a duplicate; its next receipt clears the flag. Rebuilt from the stream at start, in stream
 * order; never the system of record.
 */
import type { Receipt } from '@medvault/protocol';
import { objectKey, type ObjectId } from './assembler.js';

export type OffsiteEntry = Omit<Receipt, 'type' | 'sig'>;

/** A copy the scrub found missing or damaged, until a fresh receipt says it is good again. */
export interface Damage {
  site: string;
  repo: string;
  kind: Receipt['kind'];
  hash: string;
  problem: string;
  /** When the resend was asked for, and its id. */
  at: number;
  request: string;
}

export class OffsiteIndex {
  private readonly bySite = new Map<string, Map<string, OffsiteEntry>>();
  private readonly damaged = new Map<string, Damage>();
  /** Objects whose copies were pruned (until a receipt lists them again). */
  private readonly removed = new Set<string>();

  /**
   * Records a receipt; the first one for an object wins (it carries the original storedAt). A
   * receipt for a damaged object means its copy was stored and verified again: the damage is over.
   */
  add(r: OffsiteEntry): void {
    let m = this.bySite.get(r.site);
    if (!m) this.bySite.set(r.site, (m = new Map()));
    const key = objectKey(r);
    if (!m.has(key)) m.set(key, { site: r.site, repo: r.repo, kind: r.kind, hash: r.hash, size: r.size, storedAt: r.storedAt });
    this.damaged.delete(key);
    this.removed.delete(key);
  }

  /** Flags a copy as missing or damaged (the scrub purged it and asked the site to resend it). */
  markDamaged(d: Damage): void {
    const k = objectKey(d);
    if (!this.damaged.has(k)) this.damaged.set(k, d);
  }

  /** The damage recorded for an object, if its copy is not good now. */
  damage(id: ObjectId): Damage | undefined {
    return this.damaged.get(objectKey(id));
  }

  /** Damaged copies (of `site`), oldest first. */
  damages(site?: string): Damage[] {
    return [...this.damaged.values()].filter((d) => site === undefined || d.site === site).sort((a, b) => a.at - b.at);
  }

  /** Forgets an object whose off-site copy was pruned (deleted under retention). */
  remove(id: ObjectId): void {
    this.bySite.get(id.site)?.delete(objectKey(id));
    this.damaged.delete(objectKey(id));
    this.removed.add(objectKey(id));
  }

  /** True when the object's copy was pruned and not stored since (a copy stored again needs new message ids). */
  wasRemoved(id: ObjectId): boolean {
    return this.removed.has(objectKey(id));
  }

  /** Every receipted object of `site`, oldest receipt first. */
  entries(site: string): OffsiteEntry[] {
    return [...(this.bySite.get(site)?.values() ?? [])].sort((a, b) => a.storedAt - b.storedAt);
  }

  get(id: ObjectId): OffsiteEntry | undefined {
    return this.bySite.get(id.site)?.get(objectKey(id));
  }

  sites(): string[] {
    return [...this.bySite.keys()].sort();
  }

  /** Objects and bytes off site for `site`. */
  totals(site: string): { objects: number; bytes: number; lastStoredAt?: number } {
    const m = this.bySite.get(site);
    let bytes = 0;
    let last: number | undefined;
    for (const e of m?.values() ?? []) {
      bytes += e.size;
      if (last === undefined || e.storedAt > last) last = e.storedAt;
    }
    return { objects: m?.size ?? 0, bytes, ...(last !== undefined ? { lastStoredAt: last } : {}) };
  }
}
