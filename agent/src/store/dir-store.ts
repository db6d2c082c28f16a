/**
 * DirStore: a Store on a local directory (one backup disk). Layout: `config`, `keys/<h>`,
 * `data/<h[0..2]>/<h>`, `index/<h>`, `snapshots/<h>`, `locks/<name>`, `tmp/` for writes in flight.
 * put = write temp file, fsync, link to the final name (fails if it exists: never overwrites),
 * unlink temp, fsync the directory.
 */
import { type FileHandle, open, mkdir, readdir, stat, unlink, link, rm, rename } from 'node:fs/promises';
import { statSync, readSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import { type Store, type StoreKind, type StoreEntry, validateName, validatePut } from './store.js';
import { faultPoint } from './faults.js';
import { DIRECT_ALIGN, writeDirect } from '../platform/fsx.js';

/** Cached pack handles are closed after this long without a ranged read (DirStore.withHandle). */
const HANDLES_IDLE_MS = 1000;

/** Objects are opened without blocking: a named pipe put in a pack's place (never a regular file here) then fails its read (ESPIPE), named, instead of holding a thread in open() until something writes to it. */
const READ = constants.O_RDONLY | constants.O_NONBLOCK;

const folders: Record<Exclude<StoreKind, 'config'>, string> = { key: 'keys', pack: 'data', index: 'index', snapshot: 'snapshots', lock: 'locks' };

function storageError(what: string, cause: unknown): MedvaultError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  return new MedvaultError(codes.STORAGE_FAILED, `${what}: ${(cause as Error)?.message ?? cause}`, { cause, retryable: code === 'ENOSPC' || code === 'EIO' || code === 'EAGAIN' });
}

/** The inode `p` names now, or -1 when it cannot be stat'ed (then the cached handle is dropped). */
function inodeOf(p: string): number {
  try {
    return statSync(p).ino;
  } catch {
    return -1;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  faultPoint('dir.fsync', dir);
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Folders of packs listed at once (list); the thread pool runs 4 calls at a time. */
const LIST_AHEAD = 16;

export class DirStore implements Store {
  constructor(readonly root: string) {}

  /** How this store's packs are written: O_DIRECT until its file system refuses it (writeDurably). */
  private readonly writes: WriteMode = { direct: true };

  /** Creates the layout's folders; idempotent. */
  async init(): Promise<void> {
    try {
      for (const f of ['keys', 'data', 'index', 'snapshots', 'locks', 'tmp']) await mkdir(join(this.root, f), { recursive: true });
    } catch (cause) {
      throw storageError(`${this.root}: cannot create repository folders`, cause);
    }
  }

  private dir(kind: StoreKind, name: string): string {
    if (kind === 'config') return this.root;
    if (kind === 'pack') return join(this.root, 'data', name.slice(0, 2));
    return join(this.root, folders[kind]);
  }
  private path(kind: StoreKind, name: string): string {
    validateName(kind, name);
    return join(this.dir(kind, name), name);
  }
  /** The file that holds an object (restore reads packs from it in the crypto pool's threads). */
  localPath(kind: StoreKind, name: string): string {
    return this.path(kind, name);
  }

  /**
   * Open packs for ranged reads (restore, check): a few handles kept, reference-counted. A cached
   * handle is reused only while the path still names the same file (inode): another process (the
   * repair CLI beside the daemon) may have replaced a damaged pack, and the old handle would go on
   * reading the old bytes.
   */
  private readonly handles = new Map<string, { fh: Promise<FileHandle>; ino: Promise<number>; users: number; evicted: boolean }>();
  /**
   * All are closed once no ranged read came for HANDLES_IDLE_MS: the daemon keeps its repositories
   * open for good, and the handles its backups' tree reads left open kept a backup disk busy, so it
   * could not be unmounted (rotated) while the daemon ran.
   */
  private idle: NodeJS.Timeout | undefined;

  /** Closes the cached pack handles (a repository closing or opening: files may have been replaced). */
  closeHandles(): void {
    for (const p of [...this.handles.keys()]) this.evict(p);
  }

  private evict(p: string): void {
    const h = this.handles.get(p);
    if (!h) return;
    this.handles.delete(p);
    h.evicted = true;
    if (h.users === 0) void h.fh.then((f) => f.close()).catch(() => undefined);
  }

  private async withHandle<T>(p: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let h = this.handles.get(p);
    if (h) {
      // a synchronous stat: this runs before every ranged read (each blob of a restore), and the
      // promise form's thread-pool round trip costs several times the stat itself
      const now = inodeOf(p);
      const was = await h.ino.catch(() => -2);
      if (now !== was) this.evict(p);
      h = this.handles.get(p);
    }
    if (!h) {
      const fh = open(p, READ);
      h = { fh, ino: fh.then((f) => f.stat()).then((s) => s.ino), users: 0, evicted: false };
      this.handles.set(p, h);
      h.fh.catch(() => this.handles.delete(p));
      h.ino.catch(() => undefined);
      if (this.handles.size > 16) this.evict(this.handles.keys().next().value!);
    }
    h.users++;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.closeHandles(), HANDLES_IDLE_MS).unref();
    try {
      return await fn(await h.fh);
    } finally {
      h.users--;
      if (h.evicted && h.users === 0) void h.fh.then((f) => f.close()).catch(() => undefined);
    }
  }

  async get(kind: StoreKind, name: string, range?: { offset: number; length: number }): Promise<Buffer | undefined> {
    const p = this.path(kind, name);
    if (range && kind === 'pack') {
      try {
        return await this.withHandle(p, (fh) => readRange(fh, range));
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw storageError(`${p}: cannot read`, cause);
      }
    }
    let fh;
    try {
      fh = await open(p, READ);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storageError(`${p}: cannot open`, cause);
    }
    try {
      if (!range) return await fh.readFile();
      return await readRange(fh, range);
    } catch (cause) {
      throw storageError(`${p}: cannot read`, cause);
    } finally {
      await fh.close();
    }
  }

  async has(kind: StoreKind, name: string): Promise<boolean> {
    try {
      await stat(this.path(kind, name));
      return true;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw storageError(`${this.path(kind, name)}: cannot stat`, cause);
    }
  }

  async *list(kind: StoreKind): AsyncIterable<StoreEntry> {
    if (kind === 'config') {
      const s = await stat(join(this.root, 'config')).catch(() => undefined);
      if (s?.isFile()) yield { name: 'config', size: s.size };
      return;
    }
    const dirs = kind === 'pack' ? (await readdirOrEmpty(join(this.root, 'data'))).filter((d) => /^[0-9a-f]{2}$/.test(d)).map((d) => join(this.root, 'data', d)) : [join(this.root, folders[kind])];
    // LIST_AHEAD folders at once: packs sit in 256 folders (data/00 … ff), and read one after the
    // other, a writer's start (adoptOrphans lists every pack) waited ~50 ms for them at 190 packs
    for (let i = 0; i < dirs.length; i += LIST_AHEAD) {
      for (const entries of await Promise.all(dirs.slice(i, i + LIST_AHEAD).map((d) => this.entries(kind, d)))) yield* entries;
    }
  }

  /** The objects of `kind` in one folder, with their sizes; names that are not ours are ignored. */
  private async entries(kind: StoreKind, dir: string): Promise<StoreEntry[]> {
    const names = (await readdirOrEmpty(dir)).filter((name) => {
      try {
        validateName(kind, name);
        return true;
      } catch {
        return false; // not ours (editor backups, lost+found): ignore
      }
    });
    // a folder's stats at once: one after the other, a writer's start (its list of every pack) waited ~20-50 ms for them
    const stats = await Promise.all(names.map((name) => stat(join(dir, name)).catch(() => undefined)));
    return names.flatMap((name, i) => (stats[i]?.isFile() ? [{ name, size: stats[i]!.size }] : []));
  }

  async put(kind: StoreKind, name: string, data: Uint8Array): Promise<boolean> {
    validatePut(kind, name, data);
    const final = this.path(kind, name);
    const dir = this.dir(kind, name);
    const tmp = join(this.root, 'tmp', `${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdirIn(dir);
      await mkdirIn(join(this.root, 'tmp'));
      await writeDurably(tmp, data, 'wx', this.writes);
      faultPoint('put.link', final);
      try {
        await link(tmp, final);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw cause;
      }
      await fsyncDir(dir);
      return true;
    } catch (cause) {
      throw storageError(`${final}: cannot write`, cause);
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined); // a failing disk fails this too: the error above names the object (sweep removes the temp file)
    }
  }

  /**
   * Atomically replaces a lock object (temp file, fsync, rename, fsync dir): only the lock holder
   * refreshing its own lock uses this; content-addressed objects are never replaced.
   */
  async replace(kind: 'lock', name: string, data: Uint8Array): Promise<void> {
    validatePut(kind, name, data);
    const final = this.path(kind, name);
    const tmp = join(this.root, 'tmp', `${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeDurably(tmp, data, 'wx', this.writes);
      faultPoint('replace.rename', final);
      await rename(tmp, final);
      await fsyncDir(this.dir(kind, name));
    } catch (cause) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw storageError(`${final}: cannot replace`, cause);
    }
  }

  /** Removes leftovers of writes that never completed (files in tmp/); MUST be called only by the lock holder. */
  async sweep(): Promise<number> {
    let n = 0;
    for (const name of await readdirOrEmpty(join(this.root, 'tmp'))) {
      faultPoint('sweep.unlink', name);
      await rm(join(this.root, 'tmp', name), { force: true, recursive: true });
      n++;
    }
    return n;
  }

  async delete(kind: StoreKind, name: string): Promise<void> {
    const p = this.path(kind, name);
    try {
      faultPoint('delete.unlink', p);
      this.evict(p);
      await unlink(p);
      await fsyncDir(this.dir(kind, name));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(`${p}: cannot delete`, cause);
    }
  }
}

/**
 * Objects from this size (packs) are written with O_DIRECT (fsx writeDirect): a backup writes
 * every byte it stores once and reads none of it back, and through the page cache the copy and
 * the writeback at fsync cost the kernel 0.9-3.5 s of CPU per 1.5 GB of packs on this VM (against
 * ~0.06 s), and filled the appliance's memory with pages nobody reads. Smaller objects (index,
 * snapshot, key, lock files) go through the page cache.
 */
const DIRECT_MIN = 1024 * 1024;
/**
 * Whether O_DIRECT works on one store's file system: `direct` is cleared at its first refusal
 * (tmpfs before Linux 6.6, ramfs, FUSE, some network file systems), for that store only: one
 * process-wide flag had let a ramfs or FUSE disk send every other disk's packs through the page
 * cache for as long as the daemon ran.
 */
interface WriteMode {
  direct: boolean;
}

/** Writes `data` to a new file in two halves (a kill between them leaves a torn temp file), then fsyncs it; packs with O_DIRECT while `mode` allows. */
async function writeDurably(file: string, data: Uint8Array, flags: string, mode: WriteMode): Promise<void> {
  if (mode.direct && data.length >= DIRECT_MIN) {
    try {
      return await writeDirectly(file, data);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      mode.direct = false; // refused here: the same file again, through the page cache
      await rm(file, { force: true });
    }
  }
  faultPoint('put.open', file);
  const fh = await open(file, flags, 0o444);
  try {
    const half = data.length >> 1;
    faultPoint('put.write', file);
    await writeAll(fh, data, 0, half);
    faultPoint('put.write-rest', file);
    await writeAll(fh, data, half, data.length);
    faultPoint('put.fsync', file);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * writeDurably with O_DIRECT, at the same fault points (their subject says "(direct)"): a new file
 * (O_EXCL), two halves, fsync (the size set by the write's truncate).
 */
async function writeDirectly(file: string, data: Uint8Array): Promise<void> {
  const subject = `${file} (direct)`;
  faultPoint('put.open', subject);
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o444);
  try {
    const half = Math.floor(data.length / 2 / DIRECT_ALIGN) * DIRECT_ALIGN;
    faultPoint('put.write', subject);
    await writeDirect(fh.fd, data.subarray(0, half), 0);
    faultPoint('put.write-rest', subject);
    await writeDirect(fh.fd, data.subarray(half), half);
    faultPoint('put.fsync', subject);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Ranges up to this size are read on the calling thread: for a small blob (a restore of many small
 * files asks for one per file) the thread-pool round trip costs more than the read; larger ones
 * go to the pool, so several can be in flight on a slow disk. A pack's small blobs are read in
 * order, so readahead serves them from a cold disk too (bench restore after drop_caches: 7.8-8.1 s
 * with, 8.9-9.4 s without).
 */
const SYNC_READ_MAX = 256 * 1024;

async function readRange(fh: FileHandle, range: { offset: number; length: number }): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(range.length);
  let done = 0;
  while (done < range.length) {
    const bytesRead = range.length <= SYNC_READ_MAX ? readSync(fh.fd, buf, done, range.length - done, range.offset + done) : (await fh.read(buf, done, range.length - done, range.offset + done)).bytesRead;
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

async function writeAll(fh: FileHandle, data: Uint8Array, from: number, to: number): Promise<void> {
  while (from < to) {
    const { bytesWritten } = await fh.write(data, from, to - from, from);
    from += bytesWritten;
  }
}

/**
 * Creates folder `dir` unless it exists; its parent MUST exist (ENOENT otherwise). Never
 * recursive: a disk unmounted during a run leaves its mount point (or less), and a recursive
 * mkdir made the repository's folders again there, on the system disk, for the next put.
 */
async function mkdirIn(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storageError(`${dir}: cannot list`, cause);
  }
}
