/**
 * Paths past the kernel's PATH_MAX (4096 bytes) for backup and restore. A long path is made short
 * by opening a directory fd on an ancestor prefix and going on through /proc/self/fd/<fd>/…
 * (the kernel resolves it relative to that directory), repeatedly for very deep trees. Short
 * paths pass through untouched. The file-system calls the archiver and restorer use are
 * re-exported here with that translation; everything else about them is unchanged.
 */
import * as fs from 'node:fs';
import { closeSync, constants, openSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as fsx from './fsx.js';

/** Below this many bytes a path is used as it is. */
const LIMIT = 3072;
/** Directory fds kept open for long paths (least recently used closed first). */
const CACHE = 1024;
const fds = new Map<string, number>();

function dirFd(prefix: Buffer): number {
  const key = prefix.toString('latin1');
  let fd = fds.get(key);
  if (fd !== undefined) {
    fds.delete(key);
    fds.set(key, fd);
    return fd;
  }
  fd = openSync(prefix, constants.O_RDONLY | constants.O_DIRECTORY);
  fds.set(key, fd);
  if (fds.size > CACHE) {
    const [oldest, old] = fds.entries().next().value as [string, number];
    fds.delete(oldest);
    closeSync(old);
  }
  return fd;
}

/** An equivalent path the kernel accepts, for any absolute or relative path. */
export function shortPath(p: Buffer | string): Buffer | string {
  const b: Buffer = typeof p === 'string' ? Buffer.from(p) : p;
  if (b.length < LIMIT) return p;
  const cut = b.lastIndexOf(0x2f, LIMIT - 1);
  if (cut <= 0) return p; // no '/' to cut at: let the call report ENAMETOOLONG itself
  const q = Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd(b.subarray(0, cut))}`), b.subarray(cut)]);
  return shortPath(q);
}

type P = Buffer | string;
const s = (p: P) => shortPath(p);

export const lstat = ((p: P, o?: object) => fsp.lstat(s(p), o as never)) as typeof fsp.lstat;
export const readdir = ((p: P, o?: object) => fsp.readdir(s(p), o as never)) as typeof fsp.readdir;
export const readlink = ((p: P, o?: object) => fsp.readlink(s(p), o as never)) as typeof fsp.readlink;
export const open = ((p: P, flags?: number | string, mode?: number) => fsp.open(s(p), flags, mode)) as typeof fsp.open;
export const mkdir = ((p: P, o?: object) => fsp.mkdir(s(p), o as never)) as typeof fsp.mkdir;
export const rename = (a: P, b: P) => fsp.rename(s(a), s(b));
export const link = (a: P, b: P) => fsp.link(s(a), s(b));
export const unlink = (p: P) => fsp.unlink(s(p));
export const symlink = (target: P, p: P) => fsp.symlink(target, s(p));
export const chmod = (p: P, mode: number) => fsp.chmod(s(p), mode);
export const lchown = (p: P, uid: number, gid: number) => fsp.lchown(s(p), uid, gid);
export const rm = (p: P, o?: Parameters<typeof fsp.rm>[1]) => fsp.rm(s(p), o);
/**
 * On the calling thread, for a restore's per-file calls: on a page-cached file system each costs
 * the system call alone, where the promise form adds a thread-pool round trip (~20-35 µs of
 * main-thread CPU and several futex wake-ups; 20,000 small files made 1.7 million futexes).
 */
export const sync = {
  open: (p: P, flags: number, mode?: number) => fs.openSync(s(p), flags, mode),
  link: (a: P, b: P) => fs.linkSync(s(a), s(b)),
  rename: (a: P, b: P) => fs.renameSync(s(a), s(b)),
  /** rename unless `b` exists (EEXIST); EINVAL where the file system cannot. */
  renameNoReplace: (a: P, b: P) => fsx.renameNoReplace(s(a), s(b)),
  unlink: (p: P) => fs.unlinkSync(s(p)),
  mkdir: (p: P, mode: number) => fs.mkdirSync(s(p), { mode }),
  /** lstat, or undefined when nothing is there. */
  lstat: (p: P) => fs.lstatSync(s(p), { throwIfNoEntry: false }),
};
export const getXattrs = (p: P) => fsx.getXattrs(s(p));
/** A folder's entries with their lstat, read in the thread pool (fsx.scanDir): the backup walk's per-folder call. */
export const scanDir = (p: P) => fsx.scanDir(s(p));
export const setXattr = (p: P, name: string, value: Buffer) => fsx.setXattr(s(p), name, value);
export const setTimes = (p: P, atime: bigint, mtime: bigint) => fsx.setTimes(s(p), atime, mtime);
export const mknod = (p: P, mode: number, dev: bigint) => fsx.mknod(s(p), mode, dev);
