/**
 * systemd's service notification protocol (sd_notify(3)) for `Type=notify` units: READY=1 once
 * the daemon runs, WATCHDOG=1 only while every main loop has run recently (and every health check
 * passes), STOPPING=1 on the way out. Without $NOTIFY_SOCKET (not started by systemd) every call is a no-op.
 */
import fsx from '@medvault/fsx';

/** What a daemon tells its service manager. */
export interface Notifier {
  /** True when a service manager listens ($NOTIFY_SOCKET is set). */
  readonly active: boolean;
  /** The watchdog period requested by the unit (WatchdogSec=), or undefined without a watchdog. */
  readonly watchdogMs: number | undefined;
  send(fields: Record<string, string | number>): void;
}

/** The notifier for this process, from $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, pid = process.pid, send = fsx.notify): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  // A watchdog meant for another process (WATCHDOG_PID) is not ours to pet.
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  return {
    active: !!socket,
    watchdogMs: socket && forUs && Number.isFinite(usec) && usec > 0 ? Math.floor(usec / 1000) : undefined,
    send(fields) {
      if (!socket) return;
      const text = Object.entries(fields).map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`).join('\n');
      try {
        send(socket, text);
      } catch {
        // The manager went away or the socket is full: nothing a daemon can do about it.
      }
    },
  };
}

/** A main loop the watchdog watches, and how long it may go without running. */
export interface LoopLimit {
  name: string;
  maxAgeMs: number;
}

/**
 * Pure: the loops that have not run within their limit at `now` (never-run loops count from
 * `since`). Empty means healthy.
 */
export function staleLoops(limits: LoopLimit[], beats: ReadonlyMap<string, number>, since: number, now: number): { name: string; ageMs: number }[] {
  return limits
    .map((l) => ({ name: l.name, ageMs: now - (beats.get(l.name) ?? since), maxAgeMs: l.maxAgeMs }))
    .filter((l) => l.ageMs > l.maxAgeMs)
    .map(({ name, ageMs }) => ({ name, ageMs }));
}

/**
 * The watchdog: loops call `beat(name)` each time they complete a round, and checks (`addCheck`)
 * name what is wrong though every loop runs (a follower that hears nothing); every half watchdog
 * period it pets systemd (WATCHDOG=1) only if every loop has beaten within its limit and every
 * check passes, and otherwise reports what is wrong in STATUS= and lets systemd's timer run out.
 */
export class Watchdog {
  private readonly beats = new Map<string, number>();
  private readonly checks = new Map<string, () => string | undefined>();
  private timer: NodeJS.Timeout | undefined;
  private readonly since: number;
  private lastStatus = '';

  constructor(
    private readonly notifier: Notifier,
    private readonly limits: LoopLimit[],
    /** Monotonic by default: a wall-clock step (NTP correcting a dead RTC) must not make loops look late. */
    private readonly now: () => number = () => performance.now(),
    private readonly log: (msg: string, fields: Record<string, unknown>) => void = () => {},
  ) {
    this.since = now();
  }

  beat(name: string): void {
    this.beats.set(name, this.now());
  }

  /** Withholds WATCHDOG=1 while `problem` returns a reason (shown in STATUS=); undefined means healthy. */
  addCheck(name: string, problem: () => string | undefined): void {
    this.checks.set(name, problem);
  }

  /** The loops that are late now; empty when healthy. */
  stale(): { name: string; ageMs: number }[] {
    return staleLoops(this.limits, this.beats, this.since, this.now());
  }

  /** Sends READY=1 and starts petting (when the unit has a watchdog). */
  ready(status: string): void {
    this.notifier.send({ READY: 1, STATUS: status, MAINPID: process.pid });
    const period = this.notifier.watchdogMs;
    if (period === undefined) return;
    this.timer = setInterval(() => this.check(), Math.max(100, Math.floor(period / 2)));
    this.timer.unref();
    this.check();
  }

  /** One watchdog round: WATCHDOG=1 if healthy, else STATUS= naming the late loops and failed checks. */
  check(): boolean {
    const late = this.stale();
    const failed = [...this.checks].flatMap(([name, problem]) => {
      const why = problem();
      return why === undefined ? [] : [{ name, why }];
    });
    if (late.length === 0 && failed.length === 0) {
      this.notifier.send(this.lastStatus ? { WATCHDOG: 1, STATUS: 'running' } : { WATCHDOG: 1 });
      this.lastStatus = '';
      return true;
    }
    const status = `unhealthy: ${[...late.map((l) => `${l.name} has not run for ${Math.round(l.ageMs / 1000)} s`), ...failed.map((f) => f.why)].join(', ')}`;
    this.notifier.send({ STATUS: status });
    if (status !== this.lastStatus) this.log('watchdog withheld: a main loop is late or a check failed', { late, failed });
    this.lastStatus = status;
    return false;
  }

  stopping(): void {
    clearInterval(this.timer);
    this.notifier.send({ STOPPING: 1, STATUS: 'stopping' });
  }
}
