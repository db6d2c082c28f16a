/**
 * Bandwidth limits for replication, so the clinic's internet link stays usable: a schedule of
 * windows (days, from-to local time, Mbit/s) and a token bucket that wraps a Link with the same
 * interface (publish waits for tokens; nothing else changes). Outside every window: unlimited.
 */
import type { Link } from './link.js';

export interface BandwidthWindow {
  /** Days the window applies: 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** Minutes after local midnight, [from, to). */
  from: number;
  to: number;
  mbit: number;
}

const DAYS: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

/** Parses `mon-fri` / `sat,sun` / `*` into day numbers; undefined when malformed. */
export function parseDays(spec: string): number[] | undefined {
  if (spec.trim() === '*') return [0, 1, 2, 3, 4, 5, 6];
  const out = new Set<number>();
  for (const part of spec.toLowerCase().split(',').map((s) => s.trim())) {
    const [a, b] = part.split('-');
    const from = DAYS[a ?? ''];
    const to = b === undefined ? from : DAYS[b];
    if (from === undefined || to === undefined) return undefined;
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return [...out].sort();
}

/** Parses `07:00` into minutes after midnight; undefined when malformed. */
export function parseClock(spec: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(spec.trim());
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  return h <= 24 && min < 60 && h * 60 + min <= 1440 ? h * 60 + min : undefined;
}

/**
 * The limit in bytes per second at `now` (ms) in time zone `timeZone` (default: the machine's), or
 * undefined when unlimited. The first matching window wins.
 */
export function limitAt(windows: BandwidthWindow[], now: number, timeZone?: string): number | undefined {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(now));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = DAYS[get('weekday').toLowerCase().slice(0, 3)]!;
  const minute = Number(get('hour')) * 60 + Number(get('minute'));
  for (const w of windows) if (w.days.includes(day) && minute >= w.from && minute < w.to) return (w.mbit * 1_000_000) / 8;
  return undefined;
}

/** A Link whose publishes together stay within the schedule's rate (a token bucket of ~1 s). */
export function throttle(link: Link, o: { windows: BandwidthWindow[]; timeZone?: string; now?: () => number; sleep?: (ms: number) => Promise<void> }): Link & { readonly rate: number } {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let tokens = 0;
  let last = now();
  let sent = 0;
  let since = now();
  let queue: Promise<void> = Promise.resolve();
  const take = async (bytes: number) => {
    for (;;) {
      const limit = limitAt(o.windows, now(), o.timeZone);
      if (limit === undefined) return;
      const t = now();
      tokens = Math.min(limit, tokens + ((t - last) / 1000) * limit);
      last = t;
      if (tokens >= bytes || (tokens >= limit && bytes > limit)) {
        tokens -= bytes;
        return;
      }
      await sleep(Math.min(1000, Math.max(5, ((Math.min(bytes, limit) - tokens) / limit) * 1000)));
    }
  };
  return {
    get connected() {
      return link.connected;
    },
    /** Bytes per second published over the last window of at least 5 s. */
    get rate() {
      const elapsed = (now() - since) / 1000;
      return elapsed > 0 ? sent / elapsed : 0;
    },
    publish(subject, payload, opts) {
      // Publishes take their tokens one after another, so the order of parts is kept.
      const turn = queue.then(() => take(payload.byteLength));
      queue = turn.catch(() => {});
      return turn.then(() => {
        sent += payload.byteLength;
        if (now() - since > 60_000) {
          sent = payload.byteLength;
          since = now();
        }
        return link.publish(subject, payload, opts);
      });
    },
    follow: (...args) => link.follow(...args),
    close: () => link.close(),
  };
}
