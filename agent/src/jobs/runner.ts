/**
 * The JobRunner: the daemon's backups. Scheduled full/incremental runs (the SOP's weekly and
 * daily), continuous runs from watcher events, and periodic rescans all go through one queue, so
 * runs never overlap; a job asked for while the same store is queued merges into it (a full wins).
 * An in-place restore holds its stores (`hold`): it waits for their running backup, none starts
 * while it writes, and one runs after it, so no snapshot captures a half-restored store.
 * Each run goes to every open repository; its outcome becomes a backup-log entry, last-run times
 * are kept durably (a run missed while the appliance was off is due at start-up), and failures
 * raise alerts that resolve themselves on the next good run.
 */
import type { BackupLog } from '@medvault/protocol';
import { MedvaultError } from '@medvault/protocol';
import type { StoreConfig } from '../config.js';
import type { BackupResult } from '../backup/archiver.js';
import { backupLogEntry } from '../backup/log-entry.js';
import type { Repository } from '../repo/repository.js';
import { dueJobs, nextWake, type LastRuns } from '../schedule/planner.js';
import { nextOccurrence } from '../schedule/cron.js';
import { noteRun, readRuns } from './run-book.js';
import { DISK_OK, type Alerts } from '../daemon/alerts.js';
import { backupStoreTo, ranAs } from './backup-job.js';
import { inspectSnapshot } from './suspicion.js';
import type { StoreHold } from '../orders/runner.js';
import { isWithin, realPathOf } from '../platform/real-path.js';

export type Job = 'full' | 'incremental' | 'continuous';

export interface JobRecord {
  store: string;
  job: Job;
  reason: string;
  startedAt: number;
  endedAt: number;
  result: BackupLog['result'];
  snapshot?: string;
  error?: string;
}

export interface JobRunnerDeps {
  site: string;
  stateDir: string;
  stores: StoreConfig[];
  repos: () => { disk: string; repo: Repository }[];
  log: (entry: BackupLog) => void;
  alerts: Pick<Alerts, 'raise' | 'resolve'>;
  /** Called after a run committed at least one snapshot (to replicate at once). */
  committed: (results: BackupResult[]) => void;
  /** May a run of this store start now? Undefined = yes, else why not (e.g. the watched root is gone). */
  blocked?: (store: string) => string | undefined;
  now: () => number;
  /** Called after every planning round (the systemd watchdog watches it). */
  onPlan?: () => void;
}

export class JobRunner {
  private readonly queue: { store: string; job: Job; reason: string }[] = [];
  private running: Promise<void> | undefined;
  /** The run under way, so a hold can wait for it. */
  private inFlight: { store: string; done: Promise<void> } | undefined;
  /** Per store, how many in-place restores hold it: its jobs stay queued meanwhile. */
  private readonly holds = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly history: JobRecord[] = [];
  current: { store: string; job: Job; since: number } | undefined;

  constructor(private readonly deps: JobRunnerDeps) {}

  lastRuns(store: string): LastRuns {
    return { ...readRuns(this.deps.stateDir)[store] };
  }

  get queued(): { store: string; job: Job; reason: string }[] {
    return this.queue.map((q) => ({ ...q }));
  }

  /** Starts the schedule: due (and missed) jobs now, then at each next occurrence (checked every ≤ 60 s). */
  start(): void {
    const plan = () => {
      if (this.stopped) return;
      this.planDue();
      this.deps.onPlan?.();
      const wake = nextWake(this.schedules(), this.deps.now(), nextOccurrence);
      const wait = Math.max(1000, Math.min(60_000, (wake ?? Infinity) - this.deps.now() + 50));
      this.timer = setTimeout(plan, wait);
    };
    plan();
  }

  private schedules() {
    return this.deps.stores.map((s) => ({ store: s.name, ...s.schedule }));
  }

  /** Queues whatever the schedule says is due (including runs missed while the appliance was off). */
  planDue(): void {
    for (const d of dueJobs(this.schedules(), readRuns(this.deps.stateDir), this.deps.now(), nextOccurrence)) this.enqueue(d.store, d.job, d.reason);
  }

  /** Queues a job; merges into a queued job of the same store (full wins). */
  enqueue(store: string, job: Job, reason: string): void {
    if (this.stopped) return;
    const q = this.queue.find((x) => x.store === store);
    if (q) {
      if (job === 'full') Object.assign(q, { job, reason });
    } else this.queue.push({ store, job, reason });
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /**
   * Holds `stores` for an in-place restore: from now on no backup of them starts (requests stay
   * queued, merged as usual) until `release()`, which queues one backup of each (the restored
   * state is worth a snapshot; `reason` says why). `ready` resolves once a backup of one of them
   * that runs now has ended. Other stores' jobs go on meanwhile.
   */
  hold(stores: string[], reason: string): StoreHold {
    for (const s of stores) this.holds.set(s, (this.holds.get(s) ?? 0) + 1);
    const run = this.inFlight;
    const busy = run && stores.includes(run.store) ? [run.store] : [];
    let released = false;
    return {
      busy,
      // A backup that failed still ended: the restore goes ahead.
      ready: busy.length > 0 ? run!.done.catch(() => undefined) : Promise.resolve(),
      release: () => {
        if (released) return;
        released = true;
        for (const s of stores) {
          const n = (this.holds.get(s) ?? 1) - 1;
          if (n > 0) this.holds.set(s, n);
          else this.holds.delete(s);
        }
        for (const s of stores) if (!this.holds.has(s)) this.enqueue(s, 'incremental', reason);
      },
    };
  }

  /**
   * The files stores a restore into `target` (absolute, symlinks resolved) writes into: those
   * whose folder is the target, lies inside it or contains it.
   */
  storesAt(target: string): string[] {
    return this.deps.stores
      .filter((s) => {
        if (s.type !== 'files') return false;
        const folder = realPathOf(s.path);
        return isWithin(target, folder) || isWithin(folder, target);
      })
      .map((s) => s.name);
  }

  /** Resolves when nothing runs and no job that may start is queued (a held store's jobs wait for its release). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
    await this.running;
  }

  private async drain(): Promise<void> {
    for (let next = this.nextRunnable(); next; next = this.nextRunnable()) {
      if (this.stopped) return;
      // Set in the same turn as the job is taken, so a hold taken meanwhile sees it.
      const done = this.runOne(next.store, next.job, next.reason);
      this.inFlight = { store: next.store, done };
      try {
        await done;
      } finally {
        this.inFlight = undefined;
      }
    }
  }

  /** Takes the first queued job whose store no restore holds. */
  private nextRunnable(): { store: string; job: Job; reason: string } | undefined {
    const i = this.queue.findIndex((q) => !this.holds.has(q.store));
    return i < 0 ? undefined : this.queue.splice(i, 1)[0];
  }

  private async runOne(storeName: string, job: Job, reason: string): Promise<void> {
    const { now, alerts } = this.deps;
    const store = this.deps.stores.find((s) => s.name === storeName);
    if (!store) return;
    const startedAt = now();
    const actor = { kind: 'scheduler' as const, id: `medvault-agent (${reason})`.slice(0, 200) };
    const blocked = this.deps.blocked?.(storeName);
    if (blocked) {
      this.record({ store: storeName, job, reason, startedAt, endedAt: now(), result: 'failed', error: blocked });
      this.deps.log(backupLogEntry({ site: this.deps.site, store: storeName, job, actor, startedAt, endedAt: now(), error: { code: 'MV_ERR_NOT_FOUND', message: blocked } }));
      return;
    }
    this.current = { store: storeName, job, since: startedAt };
    const results: BackupResult[] = [];
    const failures: string[] = [];
    try {
      const repos = this.deps.repos();
      if (repos.length === 0) failures.push('no backup disk is usable');
      for (const { disk, repo } of repos) {
        const t0 = now();
        try {
          const result = await backupStoreTo(repo, store, { job, actor });
          results.push(result);
          if (store.type === 'files' && results.length === 1) {
            await inspectSnapshot(repo, result.snapshot, { store: storeName, stateDir: this.deps.stateDir, alerts, now, ...(result.changes ? { changes: result.changes } : {}) }).catch((err: Error) =>
              alerts.raise({ key: `guard:${storeName}`, code: 'MV_ERR_DATA_CORRUPT', severity: 'warning', store: storeName, message: `store ${storeName}: could not compare snapshot ${result.snapshot.slice(0, 12)} with its parent: ${err.message}` }),
            );
          }
          this.deps.log(backupLogEntry({ site: this.deps.site, store: storeName, job, actor, startedAt: t0, endedAt: now(), result }));
          alerts.resolve(`backup:${storeName}:${disk}`);
          alerts.resolve(`disk:${disk}`, `${disk}: backed up ${storeName} again`, DISK_OK); // raised at the daemon's start or by a CLI run
        } catch (err) {
          const message = `store ${storeName} on ${disk}: ${(err as Error).message}`;
          failures.push(message);
          const code = err instanceof MedvaultError ? err.code : 'MV_ERR_STORAGE_FAILED';
          this.deps.log(backupLogEntry({ site: this.deps.site, store: storeName, job, actor, startedAt: t0, endedAt: now(), error: { code, message } }));
          alerts.raise({ key: `backup:${storeName}:${disk}`, code, severity: 'critical', message: `${job} backup failed: ${message}`, store: storeName });
        }
      }
    } finally {
      this.current = undefined;
    }
    const ok = results.length > 0;
    if (ok) {
      noteRun(this.deps.stateDir, storeName, ranAs(job, results), startedAt);
      this.deps.committed(results);
    }
    const partial = results.some((r) => r.partial);
    this.record({
      store: storeName, job: ranAs(job, results), reason, startedAt, endedAt: now(), result: failures.length > 0 || !ok ? 'failed' : partial ? 'partial' : 'ok',
      ...(results[0] ? { snapshot: results[0].snapshot } : {}), ...(failures[0] ? { error: failures.join('; ') } : {}),
    });
  }

  private record(r: JobRecord): void {
    this.history.push(r);
    if (this.history.length > 200) this.history.shift();
  }
}
