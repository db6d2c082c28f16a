/**
 * Running medvault's own programs (the built CLIs) as child processes, as a user would: capture
 * their output, parse their --json answers, wait for a line, and kill what is left at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = {
  /** The agent as its launcher runs it: tsc's output joined by agent/bundle.mjs (bundle-setup.ts keeps it current). */
  agent: `${ROOT}agent/dist/bundle/main.js`,
  controller: `${ROOT}controller/dist/main.js`,
  medvault: `${ROOT}controller/dist/cli/medvault.js`,
} as const;

/**
 * Node options for every child (MEDVAULT_CHILD_NODE_ARGS, space-separated): e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the agents and controller a bench starts
 * (node refuses --cpu-prof in NODE_OPTIONS).
 */
const NODE_ARGS = process.env.MEDVAULT_CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON (the --json answer), or undefined. */
  json: any;
}

/** Runs `node bin args` to completion; never rejects for a non-zero exit (inspect `code`). */
export function run(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, bin, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: unknown;
      try {
        json = JSON.parse(last);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-running program (a daemon), with its output kept for diagnosis. */
export class Daemon {
  readonly child: ChildProcess;
  output = '';
  constructor(readonly label: string, bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [...NODE_ARGS, bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.output += d));
    this.child.stderr!.on('data', (d) => (this.output += d));
  }

  /** Resolves with the first output line matching `re`; rejects if the process exits first or on timeout. */
  waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.output);
        if (m) { cleanup(); resolve(m); }
      };
      const onExit = () => { cleanup(); reject(new Error(`${this.label} exited (${this.child.exitCode}) before printing ${re}:\n${this.output.slice(-3000)}`)); };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.label} did not print ${re} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.child.stdout!.off('data', check); this.child.stderr!.off('data', check); this.child.off('exit', onExit); };
      this.child.stdout!.on('data', check);
      this.child.stderr!.on('data', check);
      this.child.on('exit', onExit);
      check();
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
