/**
 * watch/: continuous protection of a file store. The StoreWatcher (the only chokidar user) says
 * "something changed" and how healthy it is; it never decides what changed — the next
 * incremental run rescans the tree, so missed, reordered or coalesced events lose nothing.
 *
 * Failures degrade, never silently: the inotify watch limit (ENOSPC/EMFILE) → 'scanning' (periodic
 * rescans only, and watching is tried again every `rearmMs`); the watched root vanishing → 'root-missing' (no backup may run: it would record
 * every record as deleted) until it returns, when watching resumes and a rescan is requested.
 */
import { stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import { basename } from 'node:path';
import { RESTORE_TEMP } from '../restore/restorer.js';

export type WatchState = 'starting' | 'watching' | 'scanning' | 'root-missing' | 'stopped';

export interface WatchHealth {
  state: WatchState;
  /** Why the watcher is not simply 'watching'. */
  reason?: string;
  since: number;
  events: number;
}

export interface WatcherOptions {
  root: string;
  onChange: () => void;
  onHealth: (h: WatchHealth) => void;
  /** How often the root's presence is checked (ms). */
  rootCheckMs?: number;
  /** After degrading to scanning, how often watching is tried again (ms). */
  rearmMs?: number;
  now?: () => number;
}

export class StoreWatcher {
  private fsw: FSWatcher | undefined;
  private health: WatchHealth;
  private rootTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: WatcherOptions) {
    this.health = { state: 'starting', since: this.now(), events: 0 };
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  get status(): WatchHealth {
    return { ...this.health };
  }

  async start(): Promise<void> {
    await this.checkRoot();
    this.rootTimer = setInterval(() => void this.checkRoot(), this.o.rootCheckMs ?? 2000);
  }

  private set(state: WatchState, reason?: string): void {
    if (this.health.state === state && this.health.reason === reason) return;
    this.health = { state, ...(reason ? { reason } : {}), since: this.now(), events: this.health.events };
    this.o.onHealth(this.status);
  }

  private async checkRoot(): Promise<void> {
    if (this.closed) return;
    const present = await stat(this.o.root).then((s) => s.isDirectory(), () => false);
    if (!present) {
      if (this.health.state !== 'root-missing') {
        await this.stopWatching();
        this.set('root-missing', `store folder ${this.o.root} is missing or not a folder`);
      }
      return;
    }
    if (this.health.state === 'scanning' && !this.fsw && this.now() - this.health.since >= (this.o.rearmMs ?? 60_000)) {
      this.health.since = this.now();
      this.arm();
      return;
    }
    if (this.health.state === 'root-missing' || this.health.state === 'starting') {
      const wasMissing = this.health.state === 'root-missing';
      this.arm();
      if (wasMissing) this.o.onChange();
    }
  }

  private arm(): void {
    const fsw = watch(this.o.root, { ignoreInitial: true, followSymlinks: false, persistent: true, alwaysStat: false, ignored: (p: string) => RESTORE_TEMP.test(basename(p)) });
    this.fsw = fsw;
    fsw.on('all', (_event, path) => {
      this.health.events++;
      if (path === this.o.root && _event === 'unlinkDir') void this.checkRoot();
      this.o.onChange();
    });
    fsw.on('ready', () => {
      // Ready with every watch in place: a watcher degraded earlier has recovered.
      setTimeout(() => {
        if (this.fsw === fsw) this.set('watching');
      }, 50);
    });
    fsw.on('error', (err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EMFILE') {
        void this.stopWatching();
        this.set('scanning', `the inotify watch limit was reached (${code}; raise fs.inotify.max_user_watches); changes are found by periodic rescans only`);
      } else {
        this.set('scanning', `watcher error: ${(err as Error).message}; changes are found by periodic rescans`);
      }
      this.o.onChange();
    });
  }

  private async stopWatching(): Promise<void> {
    const fsw = this.fsw;
    this.fsw = undefined;
    await fsw?.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.rootTimer);
    await this.stopWatching();
    this.set('stopped');
  }
}
