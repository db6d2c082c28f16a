/**
 * Test-only.
 * Lowers the machine's inotify watch limit for the duration of `fn` (root only), to create the
 * watch-limit condition for real. Changes are serialised across test processes with a lock file
 * that also keeps the original value, so a crash mid-test still leaves a way back
 * (`cat /tmp/medvault-inotify.lock > /proc/sys/fs/inotify/max_user_watches`).
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';

const SYSCTL = '/proc/sys/fs/inotify/max_user_watches';
const LOCK = '/tmp/medvault-inotify.lock';

export async function withInotifyLimit<T>(limit: number, fn: () => Promise<T>): Promise<T> {
  let fd: number | undefined;
  for (let i = 0; fd === undefined; i++) {
    try {
      fd = openSync(LOCK, 'wx');
    } catch {
      if (i > 600) throw new Error(`${LOCK} held for a minute: another test lowered the inotify limit and did not restore it`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const original = readFileSync(SYSCTL, 'utf8').trim();
  writeSync(fd, original);
  closeSync(fd);
  try {
    writeFileSync(SYSCTL, String(limit));
    return await fn();
  } finally {
    writeFileSync(SYSCTL, original);
    rmSync(LOCK, { force: true });
  }
}
