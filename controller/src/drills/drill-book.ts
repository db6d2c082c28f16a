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

/** Per (site, store): the figures the schedule and the dashboard need, kept as entries arrive. */
interface StoreDrills {
  /** Last issue or start of a drill. */
  lastAt: number;
  lastPassedAt?: number;
  latest: DrillEntry;
}

export class DrillBook {
  private readonly byId = new Map<string, DrillEntry>();
  private readonly byStore = new Map<string, StoreDrills>();
  private readonly listeners: Array<(e: DrillEntry) => void> = [];

  /** Called with the entry after each new order or first result (the dashboard's live channel). */
  onChange(fn: (e: DrillEntry) => void): void {
    this.listeners.push(fn);
  }

  addOrder(o: DrillOrder): void {
    const e = this.entry(o.id, o.site, o.store);
    if (e.order) return;
    e.order = o;
    this.changed(e);
  }

  /** A result counts once per drill id (a resend of the same result changes nothing). */
  addResult(r: DrillResult): void {
    const e = this.entry(r.drillId, r.site, r.store);
    if (e.result) return;
    e.result = r;
    this.changed(e);
  }

  get(id: string): DrillEntry | undefined {
    return this.byId.get(id);
  }

  /** Drills newest first (by result end, else issue time), of one site or all. */
  list(site?: string, limit = 1000): DrillEntry[] {
    return [...this.byId.values()].filter((e) => site === undefined || e.site === site).sort((a, b) => at(b) - at(a)).slice(0, limit);
  }

  /** When a drill of `store` was last issued or run (for the schedule), or undefined. */
  lastFor(site: string, store: string): number | undefined {
    return this.byStore.get(key(site, store))?.lastAt;
  }

  /** When the last drill of `store` that passed ended, or undefined. */
  lastPassedFor(site: string, store: string): number | undefined {
    return this.byStore.get(key(site, store))?.lastPassedAt;
  }

  /** The newest drill of `store` (as list orders them), or undefined. */
  latestFor(site: string, store: string): DrillEntry | undefined {
    return this.byStore.get(key(site, store))?.latest;
  }

  private changed(e: DrillEntry): void {
    const k = key(e.site, e.store);
    const s = this.byStore.get(k);
    const t = Math.max(e.order?.issuedAt ?? 0, e.result?.startedAt ?? 0);
    const passed = e.result?.result === 'passed' ? e.result.endedAt : undefined;
    if (!s) this.byStore.set(k, { lastAt: t, latest: e, ...(passed !== undefined ? { lastPassedAt: passed } : {}) });
    else {
      s.lastAt = Math.max(s.lastAt, t);
      if (passed !== undefined) s.lastPassedAt = Math.max(s.lastPassedAt ?? 0, passed);
      if (at(e) >= at(s.latest)) s.latest = e;
    }
    for (const fn of this.listeners) fn(e);
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

const at = (e: DrillEntry) => e.result?.endedAt ?? e.order?.issuedAt ?? 0;
const key = (site: string, store: string) => `${site}\0${store}`;
