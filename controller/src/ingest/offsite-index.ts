/**
 * What is off site, per site: a projection of the signed receipts on MV_CONTROL (a receipt is
 * issued only after the copy in MV_OFFSITE was read back and verified). Rebuilt from the stream at
 * start; never the system of record.
 */
import type { Receipt } from '@medvault/protocol';
import { objectKey, type ObjectId } from './assembler.js';

export type OffsiteEntry = Omit<Receipt, 'type' | 'sig'>;

export class OffsiteIndex {
  private readonly bySite = new Map<string, Map<string, OffsiteEntry>>();

  /** Records a receipt; the first one for an object wins (it carries the original storedAt). */
  add(r: OffsiteEntry): void {
    let m = this.bySite.get(r.site);
    if (!m) this.bySite.set(r.site, (m = new Map()));
    const key = objectKey(r);
    if (!m.has(key)) m.set(key, { site: r.site, repo: r.repo, kind: r.kind, hash: r.hash, size: r.size, storedAt: r.storedAt });
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
