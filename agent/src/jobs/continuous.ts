/**
 * Continuous protection for file stores with `continuous = true`: watcher events, coalesced
 * (quiet 0.5 s, at most a quarter of the RPO target and never over 2 s after the first event),
 * become a 'continuous' run; a periodic rescan (`rescan_s`) catches what the watcher missed. The
 * watcher's health is an alert (degraded to scanning, store folder missing), and while the store's
 * folder is missing no run may start (it would record every record as deleted).
 */
import type { FileStoreConfig, StoreConfig } from '../config.js';
import { nextOccurrence } from '../schedule/cron.js';
import { rpoTargetS } from '../schedule/planner.js';
import type { Alerts } from '../daemon/alerts.js';
import { Coalescer } from '../watch/coalescer.js';
import { StoreWatcher, type WatchHealth } from '../watch/watcher.js';
import type { JobRunner } from './runner.js';

export class ContinuousProtection {
  private readonly watchers = new Map<string, { watcher: StoreWatcher; coalescer: Coalescer; rescan: NodeJS.Timeout }>();
  /** Per store, the times (1 s apart at least) of change events no run is known to cover yet. */
  private readonly changes = new Map<string, number[]>();

  constructor(private readonly deps: { stores: StoreConfig[]; runner: Pick<JobRunner, 'enqueue'>; alerts: Pick<Alerts, 'raise' | 'resolve'>; now?: () => number }) {}

  async start(): Promise<void> {
    for (const s of this.deps.stores) if (s.type === 'files' && s.continuous) await this.watch(s);
  }

  private async watch(s: FileStoreConfig): Promise<void> {
    const { runner } = this.deps;
    const coalescer = new Coalescer(async () => runner.enqueue(s.name, 'continuous', 'watcher events'), {
      quietMs: 500,
      maxDelayMs: Math.max(500, Math.min(2000, (rpoTargetS(s, nextOccurrence) * 1000) / 4)),
    });
    const watcher = new StoreWatcher({
      root: s.path,
      onChange: () => {
        this.noteChange(s.name);
        coalescer.poke();
      },
      onHealth: (h) => this.onHealth(s, h),
    });
    const rescan = setInterval(() => runner.enqueue(s.name, 'continuous', 'periodic rescan'), s.rescan_s * 1000);
    this.watchers.set(s.name, { watcher, coalescer, rescan });
    await watcher.start();
  }

  private onHealth(s: FileStoreConfig, h: WatchHealth): void {
    const { alerts } = this.deps;
    const key = `watcher:${s.name}`;
    if (h.state === 'watching') alerts.resolve(key, `watching ${s.path} again`);
    else if (h.state === 'scanning') alerts.raise({ key, code: 'MV_ALERT_WATCHER_DEGRADED', severity: 'warning', message: `store ${s.name}: ${h.reason}`, store: s.name });
    else if (h.state === 'root-missing') alerts.raise({ key, code: 'MV_ALERT_STORE_MISSING', severity: 'critical', message: `store ${s.name}: ${h.reason}; no backup runs until it returns`, store: s.name });
  }

  /** Why a run of `store` may not start now, if it may not. */
  blocked(store: string): string | undefined {
    const w = this.watchers.get(store)?.watcher.status;
    return w?.state === 'root-missing' ? w.reason : undefined;
  }

  private noteChange(store: string): void {
    const t = (this.deps.now ?? Date.now)();
    let l = this.changes.get(store);
    if (!l) this.changes.set(store, (l = []));
    if (l.length === 0 || t - l[l.length - 1]! >= 1000) l.push(t);
    if (l.length > 100_000) l.splice(0, l.length - 100_000);
  }

  /**
   * The oldest change the watcher saw that no run started after (`coveredFrom`: the start of the
   * store's last successful run): how long a loss now would cost. Undefined when nothing is pending.
   */
  pendingSince(store: string, coveredFrom: number | undefined): number | undefined {
    const l = this.changes.get(store);
    if (!l) return undefined;
    if (coveredFrom !== undefined) {
      let i = 0;
      while (i < l.length && l[i]! <= coveredFrom) i++;
      if (i > 0) l.splice(0, i);
    }
    return l[0];
  }

  health(store: string): WatchHealth | undefined {
    return this.watchers.get(store)?.watcher.status;
  }

  async stop(): Promise<void> {
    for (const { watcher, coalescer, rescan } of this.watchers.values()) {
      clearInterval(rescan);
      coalescer.close();
      await watcher.close();
    }
  }
}
