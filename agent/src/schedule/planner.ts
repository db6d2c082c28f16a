/**
 * schedule/: when each store's jobs are due. The SOP's weekly full and daily incremental are cron
 * expressions with a time zone; the planner is a pure function of the schedules, the last runs and
 * `now`, so a missed run (the appliance was off) is simply due at start-up, and tests need no clock.
 *
 * A job is due when its expression had an occurrence after the last run of that job (or of a full,
 * which also satisfies an incremental) and at or before `now`. A store that never ran is due at
 * once: the first backup does not wait for a schedule. Full wins when both are due.
 */

export interface StoreSchedule {
  store: string;
  full: string;
  incremental: string;
  timezone?: string;
}

export interface LastRuns {
  /** Start time (ms) of the last completed full run. */
  full?: number;
  /** Start time (ms) of the last completed incremental or continuous run. */
  incremental?: number;
}

/** The first occurrence of `expr` in `timezone` strictly after `after` (ms), or undefined. */
export type NextOccurrence = (expr: string, timezone: string | undefined, after: number) => number | undefined;

export interface Due {
  store: string;
  job: 'full' | 'incremental';
  /** Why: the missed or current occurrence, or 'first run'. */
  reason: string;
}

export function dueJobs(schedules: StoreSchedule[], last: Record<string, LastRuns>, now: number, next: NextOccurrence): Due[] {
  const due: Due[] = [];
  for (const s of schedules) {
    const l = last[s.store] ?? {};
    if (l.full === undefined && l.incremental === undefined) {
      due.push({ store: s.store, job: 'full', reason: 'first run' });
      continue;
    }
    const fullAt = next(s.full, s.timezone, l.full ?? 0);
    if (l.full === undefined || (fullAt !== undefined && fullAt <= now)) {
      due.push({ store: s.store, job: 'full', reason: l.full === undefined ? 'no full run yet' : `full due at ${new Date(fullAt!).toISOString()}` });
      continue;
    }
    const since = Math.max(l.full, l.incremental ?? 0);
    const incAt = next(s.incremental, s.timezone, since);
    if (incAt !== undefined && incAt <= now) due.push({ store: s.store, job: 'incremental', reason: `incremental due at ${new Date(incAt).toISOString()}` });
  }
  return due;
}

/** When the planner next has something to do for these schedules (for the daemon's timer). */
export function nextWake(schedules: StoreSchedule[], now: number, next: NextOccurrence): number | undefined {
  let wake: number | undefined;
  for (const s of schedules) {
    for (const expr of [s.full, s.incremental]) {
      const t = next(expr, s.timezone, now);
      if (t !== undefined && (wake === undefined || t < wake)) wake = t;
    }
  }
  return wake;
}

/** A continuous store's RPO target when it sets no `rpo_s`. */
export const DEFAULT_CONTINUOUS_RPO_S = 60;
/** Slack on top of the longest scheduled gap, as the controller's "daily expected" (26 h) has. */
export const SCHEDULE_RPO_GRACE_S = 7_200;

/**
 * A store's RPO target, the one the heartbeat reports (`stores[].rpoS`) and drills are held to:
 * `rpo_s` when set; else 60 s for a continuous store; else the longest gap between scheduled
 * runs (full or incremental) over the next eight days plus two hours (a daily store: 93,600 s).
 */
export function rpoTargetS(s: { rpo_s?: number; continuous?: boolean; schedule: { full: string; incremental: string; timezone?: string } }, next: NextOccurrence, now = Date.now()): number {
  if (s.rpo_s !== undefined) return s.rpo_s;
  if (s.continuous) return DEFAULT_CONTINUOUS_RPO_S;
  let at = now;
  let gap = 0;
  for (let n = 0; n < 2_000 && at < now + 8 * 86_400_000; n++) {
    const t = Math.min(...[s.schedule.full, s.schedule.incremental].map((e) => next(e, s.schedule.timezone, at) ?? Infinity));
    if (!Number.isFinite(t)) break;
    if (at > now) gap = Math.max(gap, t - at);
    at = t;
  }
  return Math.round(gap / 1000) + SCHEDULE_RPO_GRACE_S;
}
