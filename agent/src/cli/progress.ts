/** A progress bar on stderr, only on a terminal and never with --json. */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { CliContext } from './context.js';

/** Loaded only for a bar on a terminal: --json and service runs skip its ~12 ms of start-up CPU. */
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;

export interface Progress {
  /** Whether a bar is drawn: callers skip building labels for none (a backup updates it per file). */
  readonly shown: boolean;
  update(value: number, total: number, label: string): void;
  stop(): void;
}

/** Bars drawn now: an interrupted command stops them, so the terminal gets its cursor and line wrap back. */
const drawn = new Set<{ stop(): void }>();

/** Stops every bar still drawn (main.ts, when a signal stops the command). */
export function stopProgress(): void {
  for (const b of drawn) b.stop();
  drawn.clear();
}

export function progress(ctx: CliContext): Progress {
  if (ctx.options.json || !process.stderr.isTTY) return { shown: false, update() {}, stop() {} };
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: '{bar} {percentage}% {label}', hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    shown: true,
    update(value, total, label) {
      if (!started) bar.start(Math.max(total, 1), 0, { label });
      if (!started) drawn.add(bar);
      started = true;
      bar.setTotal(Math.max(total, value, 1));
      bar.update(value, { label });
    },
    stop() {
      if (started && drawn.delete(bar)) bar.stop();
    },
  };
}
