/**
 * The file system a path lives on, for the heartbeat's disk figures and `doctor`: its mount
 * point, device and type from /proc/self/mounts (the longest mount point holding the path, among
 * every mount: tmpfs, NFS, CIFS and FUSE too, which systeminformation's list leaves out, so a
 * backup disk on one was reported with the root file system's free space, "ok" when nearly full),
 * and its size and free space from statfs(2) on the path itself (in the thread pool: a hung
 * network disk must not stop the daemon's main thread).
 */
import { readFile, realpath, statfs } from 'node:fs/promises';

export interface Filesystem {
  device: string;
  mount: string;
  type: string;
  sizeBytes: number;
  /** Free to an unprivileged writer (f_bavail). */
  freeBytes: number;
}

/**
 * The longest mount point that contains `path`; of several on the same point, the last (mounted
 * on top, the one seen there: a systemd automount lists its autofs first, then the disk).
 */
export function mountOf<T extends { mount: string }>(path: string, fss: T[]): T | undefined {
  let best: T | undefined;
  for (const f of fss) {
    const m = f.mount.endsWith('/') ? f.mount : `${f.mount}/`;
    if ((path === f.mount || path.startsWith(m) || f.mount === '/') && (!best || f.mount.length >= best.mount.length)) best = f;
  }
  return best;
}

/** /proc/self/mounts' fields are space-separated with spaces, tabs, newlines and backslashes as octal escapes. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The file system holding `path`, or undefined when the path cannot be reached (a disk unplugged or not mounted). */
export async function filesystemOf(path: string): Promise<Filesystem | undefined> {
  try {
    const s = await statfs(path);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter(Boolean).map((l) => {
      const [device = '', mount = '', type = ''] = l.split(' ').map(unescape);
      return { device, mount, type };
    });
    const m = mountOf(await realpath(path), mounts);
    return { device: m?.device ?? '', mount: m?.mount ?? '/', type: m?.type ?? '', sizeBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  } catch {
    return undefined;
  }
}
