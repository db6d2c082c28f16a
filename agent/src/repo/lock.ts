/**
 * One writer per repository: `locks/writer` holds {pid, host, time, token}. The holder refreshes
 * `time` every `refreshMs`. A lock is stale when its process is gone (same host, pid not alive),
 * when it is unreadable, or when it was not refreshed for `staleMs` (a dead appliance, a disk moved
 * from another host). Any other holder means MV_ERR_REPO_LOCKED at once (no waiting).
 *
 * Taking over a stale lock, safely against a second taker:
 * 1. Create `locks/takeover-<token of the stale lock>` exclusively; only one process can.
 * 2. Re-read `locks/writer`: if it no longer carries that token, someone else won: refuse.
 * 3. Delete it and create our own exclusively (a racing fresh writer makes that fail: refuse).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol';
import type { Store } from '../store/store.js';

const NAME = 'writer';
export const LOCK_STALE_MS = 30 * 60_000;
export const LOCK_REFRESH_MS = 5 * 60_000;

export interface LockOptions {
  now?: () => number;
  staleMs?: number;
  refreshMs?: number;
}

/** A held writer lock. */
export interface WriterLock {
  /** True once another process took the lock over (this holder was presumed dead): stop writing. */
  readonly lost: boolean;
  release(): Promise<void>;
}

interface Holder {
  pid?: number;
  host?: string;
  time?: number;
  token: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(b: Buffer): Holder {
  try {
    const j = JSON.parse(b.toString('utf8')) as Record<string, unknown>;
    return {
      ...(typeof j.pid === 'number' ? { pid: j.pid } : {}),
      ...(typeof j.host === 'string' ? { host: j.host } : {}),
      ...(typeof j.time === 'number' ? { time: j.time } : {}),
      token: typeof j.token === 'string' && /^[0-9a-f]{16}$/.test(j.token) ? j.token : sha256Hex(b).slice(0, 16),
    };
  } catch {
    return { token: sha256Hex(b).slice(0, 16) };
  }
}

/** Why a holder is stale, or undefined when it must be respected. */
function staleness(h: Holder, me: { host: string }, now: number, staleMs: number): string | undefined {
  if (h.pid === undefined || h.time === undefined) return 'unreadable lock';
  if (h.host === me.host && h.pid !== process.pid && !alive(h.pid)) return `process ${h.pid} is gone`;
  if (now - h.time > staleMs) return `not refreshed for ${Math.round((now - h.time) / 1000)} s`;
  return undefined;
}

/** Takes the writer lock of `store` or throws MV_ERR_REPO_LOCKED at once. */
export async function acquireLock(store: Store, what: string, o: LockOptions = {}): Promise<WriterLock> {
  const now = o.now ?? Date.now;
  const staleMs = o.staleMs ?? LOCK_STALE_MS;
  const token = randomBytes(8).toString('hex');
  const body = () => Buffer.from(JSON.stringify({ pid: process.pid, host: hostname(), time: now(), token }));
  let took = await store.put('lock', NAME, body());
  if (!took) {
    const held = await store.get('lock', NAME);
    if (held !== undefined) {
      const h = parseHolder(held);
      const why = staleness(h, { host: hostname() }, now(), staleMs);
      if (!why) {
        const since = h.time !== undefined ? new Date(h.time).toISOString() : 'unknown time';
        throw new MedvaultError(codes.REPO_LOCKED, `${what}: locked by pid ${h.pid ?? '?'} on ${h.host ?? '?'} since ${since}`, { retryable: true });
      }
      if (!(await store.put('lock', `takeover-${h.token}`, body()))) throw new MedvaultError(codes.REPO_LOCKED, `${what}: another process is taking over a stale lock`, { retryable: true });
      const again = await store.get('lock', NAME);
      if (again !== undefined && parseHolder(again).token !== h.token) throw new MedvaultError(codes.REPO_LOCKED, `${what}: the stale lock was taken over by another process`, { retryable: true });
      if (again !== undefined) await store.delete('lock', NAME);
    }
    took = await store.put('lock', NAME, body());
    if (!took) throw new MedvaultError(codes.REPO_LOCKED, `${what}: could not take the writer lock`, { retryable: true });
  }
  for await (const e of store.list('lock')) if (e.name.startsWith('takeover-')) await store.delete('lock', e.name);

  let lost = false;
  let released = false;
  const mine = async () => {
    const b = await store.get('lock', NAME);
    return b !== undefined && parseHolder(b).token === token;
  };
  let refreshing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    refreshing = (async () => {
      if (released || lost) return;
      if (!(await mine())) lost = true;
      else await store.replace('lock', NAME, body());
    })().catch(() => undefined);
  }, o.refreshMs ?? LOCK_REFRESH_MS);
  timer.unref();
  return {
    get lost() {
      return lost;
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await refreshing;
      if (await mine()) await store.delete('lock', NAME);
    },
  };
}
