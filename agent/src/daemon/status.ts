/**
 * The daemon's status file (`<state_dir>/status.json`), rewritten every few seconds: what
 * `medvault-agent status` shows — per store the last runs, the watcher's state and the queue; per
 * disk whether it is usable; open alerts; the replication backlog.
 */
import { join } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { readFileIfExists, writeFileAtomic } from '../state/journal.js';

export interface AgentStatus {
  pid: number;
  site: string;
  updatedAt: number;
  startedAt: number;
  stores: {
    name: string;
    type: string;
    continuous: boolean;
    rpoS: number;
    schedule?: { full: string; incremental: string; timezone?: string };
    watcher?: { state: string; reason?: string; since: number; events: number };
    lastFull?: number;
    lastIncremental?: number;
    lastSnapshot?: { hash: string; time: number; job: string };
    lastJob?: { job: string; result: string; endedAt: number; error?: string };
  }[];
  disks: { path: string; repo?: string; ok: boolean; error?: string }[];
  running?: { store: string; job: string; since: number };
  queued: { store: string; job: string; reason: string }[];
  alerts: { key: string; code: string; severity: string; message: string }[];
  backlog: { objects: number; bytes: number };
  /** The NATS link: connected or not, and since when (absent in a status file an older agent wrote). */
  link?: { servers: string[]; connected: boolean; since: number };
}

export const statusFile = (stateDir: string) => join(stateDir, 'status.json');

export function writeStatus(stateDir: string, s: AgentStatus): void {
  writeFileAtomic(statusFile(stateDir), JSON.stringify(s), { durable: false }); // rewritten every few seconds
}

/**
 * The last status the daemon wrote, or undefined when it never wrote one. It is written without
 * fsync, so after a power cut it may be empty or torn: that is MV_ERR_MESSAGE_INVALID naming the
 * file (not "never ran", not a bare JSON error); the running daemon rewrites it within seconds.
 */
export function readStatus(stateDir: string): AgentStatus | undefined {
  const file = statusFile(stateDir);
  const text = readFileIfExists(file);
  if (text === undefined) return undefined;
  const damaged = (why: string) =>
    new MedvaultError(codes.MESSAGE_INVALID, `${file}: ${why} (torn by a crash or power cut while being rewritten?); the running daemon rewrites it every few seconds`);
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (err) {
    throw damaged(text.length === 0 ? 'empty' : `not JSON: ${(err as Error).message}`);
  }
  const o = s as Partial<Record<keyof AgentStatus, unknown>> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o) || typeof o.pid !== 'number' || typeof o.site !== 'string' || typeof o.updatedAt !== 'number'
    || ![o.stores, o.disks, o.queued, o.alerts].every(Array.isArray) || typeof o.backlog !== 'object' || o.backlog === null) {
    throw damaged('not an agent status');
  }
  return s as AgentStatus;
}

/** Whether a process of this pid exists (signal 0: nothing is sent). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // there, owned by another user
  }
}

/**
 * The daemon already running on this state folder, if any: another live process that rewrote the
 * status within `freshMs` (it does every 2 s; a pid reused after a reboot has an old status).
 * `run` refuses to start beside it: two daemons would split the control stream's orders and
 * receipts between them and both replicate and back up.
 */
export function runningDaemon(stateDir: string, now: number, freshMs = 15_000): { pid: number; updatedAt: number } | undefined {
  let s: AgentStatus | undefined;
  try {
    s = readStatus(stateDir);
  } catch {
    return undefined; // torn by a crash: nobody is rewriting it
  }
  return s && s.pid !== process.pid && now - s.updatedAt < freshMs && alive(s.pid) ? { pid: s.pid, updatedAt: s.updatedAt } : undefined;
}
