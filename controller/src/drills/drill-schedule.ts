/**
 * The drill schedule (config `[drills]`): every store of every site gets a drill order each `every`
 * (default quarterly, SOP 5.4), with `sample` and `sources`. A store is due `every` after its last
 * drill was issued or run, or — never drilled — `every` after the site was first seen (so a new site
 * is not drilled the minute it enrols). A store is overdue when no drill of it passed within
 * `drillOverdueMs(every)` (health/assess.ts: the same threshold raises MV_ALERT_DRILL_OVERDUE).
 * `dueDrills` and `drillOutlook` are pure; the scheduler only ticks and issues.
 *
 *   [drills]
 *   every = "quarterly"          # or monthly, weekly, daily, or a number with d/h ("30d", "12h")
 *   sample = 1                   # share of the files restored (0.1 = a seeded 10 % sample)
 *   sources = ["local", "offsite"]
 */
import { z } from 'zod';
import { drillSources, type DrillSource } from '@medvault/protocol';
import { defaultPolicy, drillOverdueMs, type HealthPolicy } from '../health/assess.js';
import type { Log } from '../log.js';
import type { DrillBook } from './drill-book.js';

const D = 24 * 3600_000;
const named: Record<string, number> = { quarterly: 91 * D, monthly: 30 * D, weekly: 7 * D, daily: D };

/** "quarterly" | "monthly" | "weekly" | "daily" | "<n>d" | "<n>h" → milliseconds, or undefined. */
export function parseEvery(s: string): number | undefined {
  if (named[s] !== undefined) return named[s];
  const m = /^(\d{1,4})([dh])$/.exec(s);
  return m && Number(m[1]) > 0 ? Number(m[1]) * (m[2] === 'd' ? D : 3600_000) : undefined;
}

export const drillsConfigSchema = z
  .strictObject({
    every: z.string().refine((s) => parseEvery(s) !== undefined, 'quarterly, monthly, weekly, daily, or a number of days/hours such as "30d" or "12h"').default('quarterly'),
    sample: z.number().gt(0).max(1).default(1),
    sources: z.array(z.enum(drillSources)).min(1).max(2).default(['local', 'offsite']),
  })
  .default({ every: 'quarterly', sample: 1, sources: ['local', 'offsite'] });
export type DrillsConfig = z.infer<typeof drillsConfigSchema>;

/** The health policy with the drill-overdue rule following `[drills] every`. */
export function drillHealthPolicy(c: DrillsConfig | undefined, base: HealthPolicy = defaultPolicy): HealthPolicy {
  return { ...base, drillMaxMs: drillOverdueMs(parseEvery((c ?? drillsConfigSchema.parse(undefined)).every)!) };
}

export interface SiteStores {
  site: string;
  firstSeenAt: number;
  stores: string[];
}

type Book = Pick<DrillBook, 'lastFor' | 'lastPassedFor'>;

/** One store's schedule as the dashboard shows it. */
export interface DrillOutlook {
  site: string;
  store: string;
  /** When the scheduler issues the next drill (in the past: at its next tick). */
  nextAt: number;
  /** No drill of the store passed within drillOverdueMs(every) (never drilled: since the site was first seen). */
  overdue: boolean;
  lastPassedAt?: number;
}

/** Per store of every site at `now`: the next drill and whether it is overdue. */
export function drillOutlook(sites: SiteStores[], book: Book, everyMs: number, now: number): DrillOutlook[] {
  return sites.flatMap((s) => s.stores.map((store) => {
    const passed = book.lastPassedFor(s.site, store);
    return {
      site: s.site, store, nextAt: (book.lastFor(s.site, store) ?? s.firstSeenAt) + everyMs,
      overdue: now - (passed ?? s.firstSeenAt) > drillOverdueMs(everyMs), ...(passed !== undefined ? { lastPassedAt: passed } : {}),
    };
  }));
}

/** The (site, store) pairs due at `now`: `every` after the last drill issued or run (never drilled: after first seen). */
export function dueDrills(sites: SiteStores[], book: Book, everyMs: number, now: number): { site: string; store: string }[] {
  return drillOutlook(sites, book, everyMs, now).filter((o) => now >= o.nextAt).map(({ site, store }) => ({ site, store }));
}

export interface DrillSchedulerDeps {
  config: DrillsConfig;
  sites: () => SiteStores[];
  book: Book;
  issue: (req: { site: string; store: string; sample: number; sources: DrillSource[] }) => Promise<unknown>;
  clock: () => number;
  log: Log;
  tickMs?: number;
}

export class DrillScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  constructor(private readonly d: DrillSchedulerDeps) {}

  start(): void {
    this.timer = setInterval(() => void (this.running ??= this.tick().finally(() => (this.running = undefined))), this.d.tickMs ?? 60_000);
    this.timer.unref();
  }

  /** `[drills] every` as configured ("quarterly", "30d", …). */
  get every(): string {
    return this.d.config.every;
  }

  /** Every store's next drill and whether it is overdue, now. */
  outlook(): DrillOutlook[] {
    return drillOutlook(this.d.sites(), this.d.book, parseEvery(this.d.config.every)!, this.d.clock());
  }

  /** Issues every due drill; a failure is logged and retried at the next tick. */
  async tick(): Promise<void> {
    const every = parseEvery(this.d.config.every)!;
    for (const due of dueDrills(this.d.sites(), this.d.book, every, this.d.clock())) {
      try {
        await this.d.issue({ ...due, sample: this.d.config.sample, sources: this.d.config.sources });
      } catch (err) {
        this.d.log.warn({ site: due.site, store: due.store, err: (err as Error).message }, 'scheduled drill not issued; will retry');
      }
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
