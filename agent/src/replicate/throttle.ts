/**
 * Bandwidth limit for replication, so the clinic's internet link stays usable: `throttledLink`
 * wraps a Link with the same interface. Only object parts (`mv.v1.in.…`) wait for tokens of a
 * token bucket (about one second of the current limit, starting empty); heartbeats, alerts and
 * events pass at once. The limit follows the schedule (`schedule.ts`), re-read at least every
 * second, so a window that opens or closes takes effect within a second. Parts keep their order.
 * The wrapper also measures the replication rate (object bytes acknowledged per second).
 */
import type { Link } from './link.js';
import { limitAt, type BandwidthWindow } from './schedule.js';

export interface BandwidthSchedule {
  windows: readonly BandwidthWindow[];
  /** IANA time zone of the windows; default the machine's. */
  timeZone?: string;
}

/** Object bytes acknowledged per second over a sliding window (default 60 s). */
export class RateMeter {
  private readonly samples: { t: number; bytes: number }[] = [];
  constructor(private readonly now: () => number = Date.now, private readonly windowMs = 60_000) {}

  /** Every byte added since the meter was made. */
  total = 0;

  add(bytes: number): void {
    this.total += bytes;
    this.samples.push({ t: this.now(), bytes });
    this.trim();
  }

  /** Bytes per second since the oldest sample in the window (0 when nothing was sent lately). */
  get rate(): number {
    this.trim();
    if (this.samples.length < 2) return 0;
    const span = (this.now() - this.samples[0]!.t) / 1000;
    const bytes = this.samples.slice(1).reduce((n, s) => n + s.bytes, 0);
    return span > 0 ? bytes / span : 0;
  }

  private trim(): void {
    const from = this.now() - this.windowMs;
    while (this.samples.length > 0 && this.samples[0]!.t < from) this.samples.shift();
  }
}

export type ThrottledLink = Link & { readonly meter: RateMeter; limitNow(): number | undefined };

const OBJECT_PREFIX = 'mv.v1.in.';

/** `link` with object parts limited by `schedule`; every other member is the link's own. */
export function throttledLink(link: Link, schedule: BandwidthSchedule, o: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {}): ThrottledLink {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const meter = new RateMeter(now);
  const limitNow = () => limitAt(schedule.windows, now(), schedule.timeZone);
  let tokens = 0;
  let last = now();
  let queue: Promise<void> = Promise.resolve();
  const take = async (bytes: number) => {
    for (;;) {
      const limit = limitNow();
      const t = now();
      if (limit === undefined) {
        last = t;
        return;
      }
      tokens = Math.min(limit, tokens + ((t - last) / 1000) * limit);
      last = t;
      // A part larger than a second's worth goes once the bucket is full, and leaves it in debt.
      if (tokens >= Math.min(bytes, limit)) {
        tokens -= bytes;
        return;
      }
      await sleep(Math.min(1000, Math.max(5, ((Math.min(bytes, limit) - tokens) / limit) * 1000)));
    }
  };
  const publish: Link['publish'] = (subject, payload, opts) => {
    if (!subject.startsWith(OBJECT_PREFIX)) return link.publish(subject, payload, opts);
    const turn = queue.then(() => take(payload.byteLength));
    queue = turn.catch(() => {});
    return turn.then(() => link.publish(subject, payload, opts)).then(() => meter.add(payload.byteLength));
  };
  return new Proxy(link, {
    get(target, prop) {
      if (prop === 'publish') return publish;
      if (prop === 'meter') return meter;
      if (prop === 'limitNow') return limitNow;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as ThrottledLink;
}
