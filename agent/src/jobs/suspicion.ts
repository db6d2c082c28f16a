/**
 * What happens when a backup looks like ransomware (guard/ransomware.ts): a critical alert naming
 * the last snapshot before the change, the snapshot marked suspect in `<state_dir>/suspect.jsonl`,
 * and pruning suspended for the store until a person clears it (`medvault-agent suspect clear`).
 */
import { join } from 'node:path';
import type { Repository } from '../repo/repository.js';
import { Journal } from '../state/journal.js';
import { assess, compareSnapshots, type ChangeStats } from '../guard/ransomware.js';
import type { Alerts } from '../daemon/alerts.js';

export interface SuspectEntry {
  store: string;
  snapshot?: string;
  lastGood?: string;
  reasons?: string[];
  at: number;
  /** A person cleared the store: pruning may resume. */
  cleared?: string;
}

const file = (stateDir: string) => join(stateDir, 'suspect.jsonl');

/** Stores whose pruning is suspended (a suspect snapshot not yet cleared), with the latest entry. */
export function suspendedStores(stateDir: string): Map<string, SuspectEntry> {
  const open = new Map<string, SuspectEntry>();
  for (const e of Journal.read<SuspectEntry>(file(stateDir))) {
    if (e.cleared) open.delete(e.store);
    else open.set(e.store, e);
  }
  return open;
}

export function clearSuspect(stateDir: string, store: string, by: string, now: number): void {
  const j = Journal.open<SuspectEntry>(file(stateDir));
  try {
    j.append({ store, at: now, cleared: by });
  } finally {
    j.close();
  }
}

/**
 * Compares `snapshot` with its parent; when suspect, records it and raises the alert. Returns the
 * verdict (and the last good snapshot) so callers can print it. `changes` are the counts the
 * backup gathered against that parent (BackupResult.changes); without them both snapshots are
 * walked.
 */
export async function inspectSnapshot(
  repo: Repository,
  snapshot: string,
  o: { store: string; stateDir: string; alerts: Pick<Alerts, 'raise'>; now: () => number; changes?: ChangeStats },
): Promise<{ suspect: boolean; reasons: string[]; lastGood?: string }> {
  const parent = (await repo.loadSnapshot(snapshot)).parent;
  if (!parent) return { suspect: false, reasons: [] };
  const verdict = assess(o.changes ?? (await compareSnapshots(repo, parent, snapshot)));
  if (!verdict.suspect) return verdict;
  const when = new Date((await repo.loadSnapshot(parent)).time).toISOString();
  const j = Journal.open<SuspectEntry>(file(o.stateDir));
  try {
    j.append({ store: o.store, snapshot, lastGood: parent, reasons: verdict.reasons, at: o.now() });
  } finally {
    j.close();
  }
  o.alerts.raise({
    key: `ransomware:${o.store}`,
    code: 'MV_ALERT_RANSOMWARE',
    severity: 'critical',
    store: o.store,
    snapshot,
    message: `store ${o.store}: snapshot ${snapshot.slice(0, 12)} looks like ransomware (${verdict.reasons.join('; ')}); the last snapshot before the change is ${parent} (${when}); pruning of ${o.store} is suspended`,
  });
  return { ...verdict, lastGood: parent };
}
