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
