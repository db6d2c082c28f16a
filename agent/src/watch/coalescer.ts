/**
 * Turns a burst of change events into one run: fires `quietMs` after the last event, but never
 * later than `maxDelayMs` after the first, so a steady trickle of writes still meets the RPO.
 * Events that arrive while a run is in progress cause exactly one more run after it.
 */
export class Coalescer {
  private first: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private closed = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly opts: { quietMs: number; maxDelayMs: number; now?: () => number },
  ) {}

  /** Records one change event. */
  poke(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const now = (this.opts.now ?? Date.now)();
    this.first ??= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.opts.quietMs, this.first + this.opts.maxDelayMs - now));
    this.timer = setTimeout(() => void this.fire(), wait);
  }

  get pending(): boolean {
    return this.first !== undefined || this.running;
  }

  private async fire(): Promise<void> {
    this.first = undefined;
    this.running = true;
    try {
      await this.run();
    } finally {
      this.running = false;
      if (this.again && !this.closed) {
        this.again = false;
        this.poke();
      }
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
