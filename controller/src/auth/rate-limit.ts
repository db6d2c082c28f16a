/**
 * A fixed-window rate limit per key (e.g. per client address on login), in memory, clock injected.
 * At most `max` attempts per `windowMs`; memory is bounded by `maxKeys`.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly clock: () => number,
    private readonly opts: { max: number; windowMs: number; maxKeys?: number },
  ) {}

  /** Counts one attempt; ok false with how long to wait when over the limit. */
  take(key: string): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.clock();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs) {
      if (this.windows.size >= (this.opts.maxKeys ?? 10_000)) this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    if (w.count > this.opts.max) return { ok: false, retryAfterMs: w.start + this.opts.windowMs - now };
    return { ok: true };
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.opts.windowMs) this.windows.delete(k);
    if (this.windows.size >= (this.opts.maxKeys ?? 10_000)) this.windows.clear();
  }
}
