/** A progress bar on stderr, only on a terminal and never with --json. */
import cliProgress from 'cli-progress';
import type { CliContext } from './context.js';

export interface Progress {
  update(value: number, total: number, label: string): void;
  stop(): void;
}

export function progress(ctx: CliContext): Progress {
  if (ctx.options.json || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: '{bar} {percentage}% {label}', hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(value, total, label) {
      if (!started) bar.start(Math.max(total, 1), 0, { label });
      started = true;
      bar.setTotal(Math.max(total, value, 1));
      bar.update(value, { label });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
