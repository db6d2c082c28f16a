/** A progress bar on stderr, only on a terminal and never with --json. */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { CliContext } from './context.js';
import { onInterrupt } from '../platform/on-interrupt.js';
import { progressPercent } from '@medvault/protocol';

/** Loaded only for a bar on a terminal: --json and service runs skip its ~12 ms of start-up CPU. */
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;

export interface Progress {
  /** Whether a bar is drawn: callers skip building labels for none (a backup updates it per file). */
  readonly shown: boolean;
  /** Draws `value` of `total` (progressPercent; see progressWork); with no total known, only the label. */
  update(value: number, total: number | undefined, label: string): void;
  /** The work is complete: draws 100% (where a total was known) and stops. */
  done(): void;
  stop(): void;
}

export function progress(ctx: CliContext): Progress {
  if (ctx.options.json || !process.stderr.isTTY) return { shown: false, update() {}, done() {}, stop() {} };
  const cliProgress = loadCliProgress();
  const format = (o: cliProgressModule.Options, p: cliProgressModule.Params, payload: { pct?: number; label: string }) =>
    payload.pct === undefined ? payload.label : `${cliProgress.Format.BarFormat(payload.pct / 100, o)} ${payload.pct}% ${payload.label}`;
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  let last = { pct: undefined as number | undefined, label: '' };
  // drawn: an interrupted command stops it, so the terminal gets its cursor and line wrap back
  let undraw = (): boolean => false;
  return {
    shown: true,
    update(value, total, label) {
      last = { pct: progressPercent(value, total), label };
      if (!started) bar.start(100, 0, last);
      if (!started) undraw = onInterrupt(() => bar.stop());
      started = true;
      bar.update(last.pct ?? 0, last);
    },
    done() {
      if (started && last.pct !== undefined) bar.update(100, { ...last, pct: 100 });
      this.stop();
    },
    stop() {
      if (undraw()) bar.stop();
    },
  };
}
