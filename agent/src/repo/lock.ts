/**
 * One writer per repository: `locks/writer` holds {pid, host, time}. A lock whose process is gone
 * (same host, pid not alive) is stale and taken over; any other holder means MV_ERR_REPO_LOCKED.
 */
import { hostname } from 'node:os';
import { MedvaultError, codes } from '@medvault/protocol';
import type { Store } from '../store/store.js';

const NAME = 'writer';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the writer lock of `store`; resolves to its release function. */
export async function acquireLock(store: Store, what: string, now: () => number = Date.now): Promise<() => Promise<void>> {
  const me = { pid: process.pid, host: hostname(), time: now() };
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await store.put('lock', NAME, Buffer.from(JSON.stringify(me)))) {
      return async () => {
        await store.delete('lock', NAME);
      };
    }
    const held = await store.get('lock', NAME);
    let holder: { pid?: unknown; host?: unknown; time?: unknown } = {};
    try {
      holder = JSON.parse(held?.toString('utf8') ?? '{}');
    } catch {
      // unreadable lock: treated as stale below
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : undefined;
    const stale = held !== undefined && (pid === undefined || (holder.host === me.host && pid !== process.pid && !alive(pid)));
    if (!stale) {
      const since = typeof holder.time === 'number' ? new Date(holder.time).toISOString() : 'unknown time';
      throw new MedvaultError(codes.REPO_LOCKED, `${what}: locked by pid ${pid ?? '?'} on ${String(holder.host ?? '?')} since ${since}`, { retryable: true });
    }
    await store.delete('lock', NAME);
  }
  throw new MedvaultError(codes.REPO_LOCKED, `${what}: could not take the writer lock`, { retryable: true });
}
