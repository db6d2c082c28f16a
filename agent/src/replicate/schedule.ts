/**
 * The bandwidth schedule for replication (`[replication] bandwidth` in agent.toml): windows of
 * weekdays and local wall-clock times, each with a limit. Pure: `limitAt` is a function of the
 * windows, the instant and the time zone (DST is the zone's business: a window is local time, so
 * `07:00` stays 07:00 across a clock change). Outside every window replication is unlimited; the
 * first matching window wins.
 */

export interface BandwidthWindow {
  /** Days the window applies: 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** Minutes after local midnight, [from, to). */
  from: number;
  to: number;
  /** Bytes per second; undefined: unlimited (an exception carved out of a later window). */
  bytesPerS?: number;
}

const DAYS: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

/** Parses `mon-fri` / `sat,sun` / `fri-mon` / `*` into day numbers; undefined when malformed. */
export function parseDays(spec: string): number[] | undefined {
  if (spec.trim() === '*') return [0, 1, 2, 3, 4, 5, 6];
  const out = new Set<number>();
  for (const part of spec.toLowerCase().split(',').map((s) => s.trim())) {
    const [a, b, extra] = part.split('-');
    const from = DAYS[a ?? ''];
    const to = b === undefined ? from : DAYS[b];
    if (from === undefined || to === undefined || extra !== undefined) return undefined;
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return [...out].sort();
}

/** Parses `07:00` (up to `24:00`) into minutes after midnight; undefined when malformed. */
export function parseClock(spec: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(spec.trim());
  if (!m) return undefined;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return Number(m[2]) < 60 && minutes <= 1440 ? minutes : undefined;
}

/** 64 kbit/s in bytes per second. */
export const MIN_RATE = 8000;

const UNITS: Record<string, number> = { kbit: 125, Mbit: 125_000, Gbit: 125_000_000, kB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * Parses `5Mbit`, `500 kbit`, `2MB`, `1.5MiB` (per second) into bytes per second, `unlimited` into
 * null. At least 64 kbit/s: slower, one part (~1 MiB) would take longer than the watchdog waits.
 */
export function parseRate(spec: string): number | null | undefined {
  if (spec.trim() === 'unlimited') return null;
  const m = /^(\d+(?:\.\d+)?)\s*(kbit|Mbit|Gbit|kB|MB|GB|KiB|MiB|GiB)(?:\/s)?$/.exec(spec.trim());
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * UNITS[m[2]!]!);
  return bytes >= MIN_RATE ? bytes : undefined;
}

/** `5 Mbit/s` for 625,000 bytes per second. */
export function formatRate(bytesPerS: number): string {
  const mbit = (bytesPerS * 8) / 1e6;
  return mbit >= 1 ? `${+mbit.toFixed(2)} Mbit/s` : `${+(mbit * 1000).toFixed(1)} kbit/s`;
}

/** The local weekday (0 = Sunday) and minute after midnight of `now` in `timeZone` (default: the machine's). */
export function localTime(now: number, timeZone?: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(now));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return { day: DAYS[get('weekday').toLowerCase().slice(0, 3)]!, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/** The limit in bytes per second at `now` (ms since the epoch) in `timeZone`, or undefined when unlimited. */
export function limitAt(windows: readonly BandwidthWindow[], now: number, timeZone?: string): number | undefined {
  if (windows.length === 0) return undefined;
  const { day, minute } = localTime(now, timeZone);
  const w = windows.find((x) => x.days.includes(day) && minute >= x.from && minute < x.to);
  return w?.bytesPerS;
}
