/**
 * The run book (`<state_dir>/runs.json`): when each store last completed a full and an incremental
 * run, whoever ran it (the daemon's schedule, continuous mode or a person with the CLI), so the
 * schedule counts every real run and a run missed while the appliance was off is due at start-up.
 * Updates re-read the file and keep the later time, so two processes never lose each other's runs.
 */
import { join } from 'node:path';
import type { LastRuns } from '../schedule/planner.js';
import { readFileIfExists, writeFileAtomic } from '../state/journal.js';

const file = (stateDir: string) => join(stateDir, 'runs.json');

export function readRuns(stateDir: string): Record<string, LastRuns> {
  try {
    return JSON.parse(readFileIfExists(file(stateDir)) ?? '{}') as Record<string, LastRuns>;
  } catch {
    return {};
  }
}

export function noteRun(stateDir: string, store: string, job: 'full' | 'incremental' | 'continuous', startedAt: number): void {
  const runs = readRuns(stateDir);
  const l = (runs[store] ??= {});
  const field = job === 'full' ? 'full' : 'incremental';
  l[field] = Math.max(l[field] ?? 0, startedAt);
  writeFileAtomic(file(stateDir), JSON.stringify(runs));
}
