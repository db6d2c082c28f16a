/** The one adapter over croner: next occurrence of a cron expression in a time zone, and validation. */
import { Cron } from 'croner';
import type { NextOccurrence } from './planner.js';

export const nextOccurrence: NextOccurrence = (expr, timezone, after) => {
  const c = new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}) });
  return c.nextRun(new Date(after))?.getTime();
};

/** Undefined when `expr` (in `timezone`) is a valid cron expression, else what is wrong. */
export function cronProblem(expr: string, timezone?: string): string | undefined {
  try {
    new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}) }).nextRun();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
