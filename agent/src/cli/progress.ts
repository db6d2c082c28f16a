/** A progress bar on stderr, only on a terminal and never with --json. */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { CliContext } from './context.js';
import { onInterrupt } from '../platform/on-interrupt.js';

/** Loaded only for a bar on a terminal: --json and service runs skip its ~12 ms of start-up CPU. */
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;

export interface Progress {
  /** Whether a bar is drawn: callers skip building labels for none (a backup updates it per file). */
  readonly shown: boolean;
  update(value: number, total: number, label: string): void;
  stop(): void;
}

export function progress(ctx: CliContext): Progress {
  if (ctx.options.json || !process.stderr.isTTY) return { shown: false, update() {}, stop() {} };
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: '{bar} {percentage}% {label}', hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  // drawn: an interrupted command stops it, so the terminal gets its cursor and line wrap back
  let undraw = (): boolean => false;
  return {
    shown: true,
    update(value, total, label) {
      if (!started) bar.start(Math.max(total, 1), 0, { label });
      if (!started) undraw = onInterrupt(() => bar.stop());
      started = true;
      bar.setTotal(Math.max(total, value, 1));
      bar.update(value, { label });
    },
    stop() {
      if (undraw()) bar.stop();
    },
  };
}
