/**
 * The daemon's status file (`<state_dir>/status.json`), rewritten every few seconds: what
 * `medvault-agent status` shows — per store the last runs, the watcher's state and the queue; per
 * disk whether it is usable; open alerts; the replication backlog.
 */
import { join } from 'node:path';
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
}

export const statusFile = (stateDir: string) => join(stateDir, 'status.json');

export function writeStatus(stateDir: string, s: AgentStatus): void {
  writeFileAtomic(statusFile(stateDir), JSON.stringify(s), { durable: false }); // rewritten every few seconds
}

export function readStatus(stateDir: string): AgentStatus | undefined {
  const text = readFileIfExists(statusFile(stateDir));
  return text ? (JSON.parse(text) as AgentStatus) : undefined;
}
