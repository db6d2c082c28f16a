/**
 * drills/: disaster-recovery drills from the controller's side (SOP 5.4): the DrillBook projects the
 * drill orders issued (MV_CONTROL `mv.v1.ctl.<site>.drill`) and the agents' results (MV_EVENTS
 * `mv.v1.ev.<site>.drill`, mv.drill-result.v1), rebuilt from the streams at every start like the
 * fleet registry; the scheduler issues drills per store when they are due; reports are signed.
 */
import type { DrillOrder, DrillResult } from '@medvault/protocol';

export interface DrillEntry {
  id: string;
  site: string;
  store: string;
  order?: DrillOrder;
  result?: DrillResult;
}

/** Bound on what is kept in memory; the streams keep everything. */
export const MAX_DRILLS = 50_000;

export class DrillBook {
  private readonly byId = new Map<string, DrillEntry>();

  addOrder(o: DrillOrder): void {
    this.entry(o.id, o.site, o.store).order = o;
  }

  /** A result counts once per drill id (a resend of the same result changes nothing). */
  addResult(r: DrillResult): void {
    this.entry(r.drillId, r.site, r.store).result ??= r;
  }

  get(id: string): DrillEntry | undefined {
    return this.byId.get(id);
  }

  /** Drills newest first (by result end, else issue time), of one site or all. */
  list(site?: string, limit = 1000): DrillEntry[] {
    const at = (e: DrillEntry) => e.result?.endedAt ?? e.order?.issuedAt ?? 0;
    return [...this.byId.values()].filter((e) => site === undefined || e.site === site).sort((a, b) => at(b) - at(a)).slice(0, limit);
  }

  /** When a drill of `store` was last issued or run (for the schedule), or undefined. */
  lastFor(site: string, store: string): number | undefined {
    let last: number | undefined;
    for (const e of this.byId.values()) {
      if (e.site !== site || e.store !== store) continue;
      const t = Math.max(e.order?.issuedAt ?? 0, e.result?.startedAt ?? 0);
      last = Math.max(last ?? 0, t);
    }
    return last;
  }

  private entry(id: string, site: string, store: string): DrillEntry {
    let e = this.byId.get(id);
    if (!e) {
      this.byId.set(id, (e = { id, site, store }));
      if (this.byId.size > MAX_DRILLS) this.byId.delete(this.byId.keys().next().value!);
    }
    return e;
  }
}
