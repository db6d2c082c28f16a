/**
 * restore/: the Restorer writes (part of) a snapshot into a target folder and verifies it.
 *
 * 1. Resolve the snapshot ('latest' of a store, or a hash/prefix) and the selected paths in it.
 * 2. Walk the selected trees; a name that is empty, '.', '..' or holds '/' or NUL is refused.
 * 3. Folders: created with mkdir, or reused only if lstat says they are real folders (a symlink in
 *    the target is never followed: 'new' refuses it, 'overwrite' replaces it), then opened
 *    (O_NOFOLLOW) and named by their descriptor, `/proc/self/fd/N`, for everything inside them:
 *    a folder swapped for a symlink meanwhile (someone else writing in the target) is never
 *    followed, by this thread or a pool thread.
 * 4. Files (file-writer.ts; whole files from local packs in the crypto pool's threads): each chunk
 *    is authenticated (AES-GCM and id MAC) before its bytes are written (4 KiB blocks of zeros
 *    are left as holes, so sparse files stay sparse) to a temp file next to the final name; a
 *    file with any bad chunk is deleted and reported. Mode and mtime are set, then the temp file
 *    is renamed ('overwrite') or renamed without replacing ('new': renameat2 RENAME_NOREPLACE,
 *    else link + unlink; refuses an existing name atomically).
 * 5. Symlinks are created as symlinks; folder modes and mtimes are set after their contents, also
 *    those of the folders above a selected path that the run made (not of folders already there).
 * 6. Every chunk is read back from the temp file as soon as it is written and compared byte for
 *    byte with the authenticated plaintext (a hole must read as zeros), and the file must end
 *    there; a file that differs is deleted, never placed, and reported (MV_ERR_VERIFY_FAILED).
 * 7. One syncfs of the target makes it all durable (instead of an fsync per file); a writeback error
 *    on the target's file system since the run began fails the run (MV_ERR_STORAGE_FAILED).
 */
import { realpath } from 'node:fs/promises';
import { mkdir, link, symlink, chmod, rm, lchown, mknod, setTimes, sync } from '../platform/long-paths.js';
import { constants, openSync, closeSync, fstatSync, readSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { MedvaultError, codes, printable } from '@medvault/protocol';
import type { Repository } from '../repo/repository.js';
import { findByName, nameBytes, unsafeName, type TreeNode } from '../repo/tree.js';
import type { BlobEntry } from '../repo/pack.js';
import { cryptoPool, type LocalChunk, type RestoredFile } from '../crypto/pool.js';
import { FileWriter, place, applyXattrs, notOverwritten, type FileTarget } from './file-writer.js';
import { syncfs } from '../platform/fsx.js';
import { onInterrupt } from '../platform/on-interrupt.js';

export interface RestoreOptions {
  /** 'latest' (of `store`) or a snapshot hash or unique prefix. */
  snapshot: 'latest' | string;
  store?: string;
  /** Paths inside the snapshot, '/'-separated; [] or [''] restores everything. */
  paths: string[];
  target: string;
  /** 'new' refuses to replace anything that exists; 'overwrite' replaces files and symlinks. */
  mode: 'new' | 'overwrite';
  /**
   * Called after each file is restored. The totals are what the restore will write: every name of
   * a file, and a multiply-linked inode's bytes once; `files` and `bytes` reach them exactly when
   * every file has been restored.
   */
  onProgress?: (p: { files: number; bytes: number; totalFiles: number; totalBytes: number }) => void;
}

export interface RestoreResult {
  snapshot: string;
  files: number;
  bytes: number;
  /** Files read back and found equal to the snapshot. */
  verified: number;
  /** Paths (inside the snapshot) that were not restored or did not verify. */
  failed: string[];
  errors: { path: string; code: string; message: string }[];
}

const sep = Buffer.from('/');

/**
 * Bytes of one file's chunks read and being authenticated ahead of its writes on the repository's
 * path (chunks(); files from local packs take one chunk at a time in a pool thread). Multiplied by
 * FILE_CONCURRENCY: 2 MiB restored the full bench data set with ~60-100 MiB less peak RSS than
 * 8 MiB and no slower (one chunk ahead of the write is what overlaps the work).
 */
const CHUNKS_AHEAD = 2 * 1024 * 1024;
/** A store that fetches (off site) is told the packs of the next this many bytes of a file's chunks. */
const PREFETCH_AHEAD = 64 * 1024 * 1024;
/**
 * Files restored (and verified) at once, across folders: enough queued for every pool thread to
 * go on to its next file at once (8, and a drain at each folder's end, left the threads idle a
 * third of the time). The walk goes on into the next folder while a folder's last files are
 * written (restoreChildren).
 */
const FILE_CONCURRENCY = 16;
const join = (dir: Buffer, name: Buffer) => Buffer.concat([dir, sep, name]);
const seconds = (ns: string) => Number(BigInt(ns)) / 1e9;
const ROOT = process.getuid?.() === 0;

/** A restore's temporary file (`.mv-restore-<16 hex>.tmp`, renamed into place when verified): backups and watchers skip it. */
export const RESTORE_TEMP = /^\.mv-restore-[0-9a-f]{16}\.tmp$/;

/**
 * Creates the target folder (and those above it) unless it is there. A target that is a file, or
 * under one, is bad input (MV_ERR_CONFIG_INVALID naming it) rather than mkdir's bare EEXIST/ENOTDIR.
 */
async function makeTarget(target: string): Promise<void> {
  try {
    await mkdir(target, { recursive: true });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw cause;
    throw new MedvaultError(codes.CONFIG_INVALID, `restore target ${printable(target)} is not a folder${code === 'ENOTDIR' ? ' (a file is in its path)' : ''}: name a folder, or one to create`, { cause });
  }
}

/** A walk handed out (restoreChildren, restoreNode): `done` resolves once all of it is placed. */
interface Started {
  done: Promise<void>;
}
const DONE: Started = { done: Promise.resolve() };

export class Restorer {
  constructor(private readonly repo: Repository) {}

  /** Restores and verifies; resolves with what failed rather than throwing for per-file problems. */
  async restore(o: RestoreOptions): Promise<RestoreResult> {
    const info = await this.repo.resolveSnapshot(o.snapshot, o.store);
    const snap = await this.repo.loadSnapshot(info.hash);
    const run = new RestoreRun(this.repo, o, info.hash);
    const roots = await run.select(snap.tree, o.paths.filter((p) => p.split('/').some((s) => s !== '')));
    await makeTarget(o.target);
    const target = Buffer.from(await realpath(o.target));
    // opened before anything is written, so its syncfs at the end reports every writeback error
    // of the run, also those of the kernel's own flushes meanwhile
    const targetFd = openSync(target, constants.O_RDONLY | constants.O_DIRECTORY);
    const forget = onInterrupt(() => run.removeTemps());
    try {
      for (const r of roots) await (r.node ? run.countNode(r.node) : run.countTree(snap.tree));
      // Folders above a selected path that this run made: given their snapshot owner, mode and
      // times once every root is placed (deepest first); folders that were there are left as they are.
      const made: { dir: Buffer; node: TreeNode; display: string }[] = [];
      for (const r of roots) {
        const dirs = [run.openDir(target, r.display, false)];
        try {
          for (const [i, seg] of r.parents.entries()) {
            const path = join(dirs.at(-1)!, seg);
            const fresh = !sync.lstat(path);
            dirs.push(await run.ensureDir(path, r.display));
            if (fresh) made.push({ dir: run.pin(dirs.at(-1)!), node: r.parentNodes[i]!, display: r.display.split('/').slice(0, i + 1).join('/') });
          }
          await (r.node ? await run.restoreNode(dirs.at(-1)!, r.node, r.display) : await run.restoreChildren(dirs.at(-1)!, snap.tree, '')).done;
        } finally {
          for (const d of dirs) run.closeDir(d);
        }
      }
      for (const m of made.reverse()) await run.finishDir(m.dir, m.node, m.display).catch((err) => run.fail(m.display, err));
      await run.syncTarget(targetFd, o.target);
    } finally {
      forget();
      run.closeDirs();
      closeSync(targetFd);
    }
    return run.result;
  }
}

class RestoreRun {
  readonly result: RestoreResult;
  /** First restored path of each multiply-linked inode (`dev:inode` from the snapshot), once written. */
  private readonly inodes = new Map<string, Promise<Buffer | undefined>>();
  private totalFiles = 0;
  private totalBytes = 0;

  constructor(
    private readonly repo: Repository,
    private readonly o: RestoreOptions,
    snapshot: string,
  ) {
    this.result = { snapshot, files: 0, bytes: 0, verified: 0, failed: [], errors: [] };
  }

  fail(path: string, err: unknown): void {
    const code = err instanceof MedvaultError ? err.code : ((err as NodeJS.ErrnoException)?.code ?? 'ERROR');
    this.result.errors.push({ path, code, message: printable((err as Error)?.message ?? String(err)) }); // a system message may quote the raw path
    if (!this.failedPaths.has(path)) this.result.failed.push(path);
    this.failedPaths.add(path);
  }
  /** result.failed as a set (a restore into a full folder fails every name: no scan per failure). */
  private readonly failedPaths = new Set<string>();

  /** Finds each selected path's node; [] selects the root tree itself (node undefined). */
  async select(root: string, paths: string[]): Promise<{ parents: Buffer[]; parentNodes: TreeNode[]; node?: TreeNode; display: string }[]> {
    if (paths.length === 0) return [{ parents: [], parentNodes: [], display: '' }];
    const out = [];
    for (const p of paths) {
      const segs = p.split('/').filter((s) => s !== '');
      let tree: string | undefined = root;
      let node: TreeNode | undefined;
      const parents: Buffer[] = [];
      const parentNodes: TreeNode[] = [];
      for (const [i, seg] of segs.entries()) {
        const want = Buffer.from(seg);
        // A crafted snapshot may hold a folder named '..': never walk (or write) through one.
        const why = unsafeName(want);
        if (why) throw new MedvaultError(codes.DATA_CORRUPT, `path ${JSON.stringify(p)}: refused: ${why}`);
        node = tree ? findByName(await this.repo.loadTree(tree), seg) : undefined;
        if (!node) throw new MedvaultError(codes.NOT_FOUND, `snapshot ${this.result.snapshot}: no path ${p}`);
        if (i < segs.length - 1) {
          parents.push(nameBytes(node)); // the real name (want is its shown form for a name that is not UTF-8)
          parentNodes.push(node);
        }
        tree = node.subtree;
      }
      out.push({ parents, parentNodes, node, display: segs.join('/') });
    }
    return out;
  }

  /** Multiply-linked inodes counted (`dev:inode`): their bytes are written once, by the first name. */
  private readonly countedInodes = new Set<string>();

  async countNode(n: TreeNode): Promise<void> {
    if (n.type === 'file') {
      this.totalFiles++;
      const inode = n.links > 1 ? `${n.dev}:${n.inode}` : undefined;
      if (!inode || !this.countedInodes.has(inode)) this.totalBytes += n.size;
      if (inode) this.countedInodes.add(inode);
    } else if (n.type === 'dir') await this.countTree(n.subtree!);
  }

  async countTree(id: string): Promise<void> {
    try {
      for (const n of await this.repo.loadTree(id)) await this.countNode(n);
    } catch {
      // reported when the restore reaches this tree
    }
  }

  /** Makes `path` a real folder (created, or existing and not a symlink) and returns it opened (openDir). */
  async ensureDir(path: Buffer, display: string): Promise<Buffer> {
    const st = sync.lstat(path);
    if (st && !st.isDirectory()) {
      if (this.o.mode === 'new') throw new MedvaultError(codes.CONFIG_INVALID, `${display}: exists in the target and is not a folder`);
      sync.unlink(path);
    }
    if (!st?.isDirectory()) sync.mkdir(path, 0o700);
    return this.openDir(path, display, true);
  }

  /** Folders open for the names in them, by their `/proc/self/fd/N` path; pinned ones stay open to the run's end. */
  private readonly dirs = new Map<string, { fd: number; pinned: boolean }>();

  /** Opens a folder (never through a symlink when `noFollow`) and returns the path of its descriptor. */
  openDir(path: Buffer, display: string, noFollow: boolean): Buffer {
    let fd: number;
    try {
      fd = sync.open(path, constants.O_RDONLY | constants.O_DIRECTORY | (noFollow ? constants.O_NOFOLLOW : 0));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new MedvaultError(codes.CONFIG_INVALID, `${display}: replaced in the target by something that is not a folder while restoring; not followed`, { cause: err });
      throw err;
    }
    const dir = Buffer.from(`/proc/self/fd/${fd}`);
    this.dirs.set(dir.toString(), { fd, pinned: false });
    return dir;
  }

  /** Keeps a folder's descriptor open to the run's end (closeDir passes it over) and returns it. */
  pin(dir: Buffer): Buffer {
    this.dirs.get(dir.toString())!.pinned = true;
    return dir;
  }

  /** Closes a folder's descriptor once its work is done, unless a later hard link needs a name in it. */
  closeDir(dir: Buffer): void {
    const d = this.dirs.get(dir.toString());
    if (!d || d.pinned) return;
    this.dirs.delete(dir.toString());
    closeSync(d.fd);
  }

  closeDirs(): void {
    for (const d of this.dirs.values()) closeSync(d.fd);
    this.dirs.clear();
  }

  /**
   * Walks a folder's tree into `dir`: files are written FILE_CONCURRENCY at a time over the whole
   * run (parallel writes beat one stream). Resolves once every entry below has been handed out, so
   * the walk goes on to the next folder while the last files of this one are written (waiting for
   * them left the pool threads idle at each of the bench data set's 500 folder ends); `done`
   * resolves once every entry is placed and each folder's own mode and times are set.
   */
  async restoreChildren(dir: Buffer, tree: string, display: string): Promise<Started> {
    let nodes: TreeNode[];
    try {
      nodes = await this.repo.loadTree(tree);
    } catch (err) {
      this.fail(display || '.', err);
      return DONE;
    }
    const shown = (n: TreeNode) => (display ? `${display}/${n.display}` : n.display);
    const all: Promise<void>[] = [];
    for (const n of nodes) {
      if (n.type === 'dir') continue;
      await this.slot();
      all.push(this.restoreNode(dir, n, shown(n)).then(() => this.release()));
    }
    for (const n of nodes) if (n.type === 'dir') all.push((await this.restoreNode(dir, n, shown(n))).done);
    return { done: Promise.all(all).then(() => undefined) };
  }

  /** Files in flight (FILE_CONCURRENCY at most) and the walks waiting for one to end. */
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private async slot(): Promise<void> {
    while (this.running >= FILE_CONCURRENCY) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
  }
  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }

  /** Restores one entry; a folder's walk is handed out when this resolves and placed at its `done`. Never rejects: failures are recorded. */
  async restoreNode(dir: Buffer, n: TreeNode, display: string): Promise<Started> {
    const path = join(dir, nameBytes(n));
    try {
      const why = unsafeName(nameBytes(n));
      if (why) throw new MedvaultError(codes.DATA_CORRUPT, `${display}: refused: ${why}`);
      if (n.type === 'dir') {
        const sub = await this.ensureDir(path, display);
        const below = await this.restoreChildren(sub, n.subtree!, display);
        return { done: below.done.then(() => this.finishDir(sub, n, display)).catch((err) => this.fail(display, err)).finally(() => this.closeDir(sub)) };
      }
      if (n.type === 'file') await this.restoreFile(dir, path, n, display);
      else if (n.type === 'symlink') await this.restoreSymlink(dir, path, n);
      else await this.restoreSpecial(dir, path, n, display);
    } catch (err) {
      this.fail(display, err);
    }
    return DONE;
  }

  /** A folder's owner, mode, extended attributes and times, once everything in it is placed. */
  async finishDir(sub: Buffer, n: TreeNode, display: string): Promise<void> {
    // `<fd path>/.` is the folder itself, also for the calls that never follow a final symlink
    const self = join(sub, Buffer.from('.'));
    if (ROOT) await lchown(self, n.uid, n.gid).catch(() => undefined);
    await chmod(self, n.mode);
    for (const message of applyXattrs(self, n.xattrs, display)) this.result.errors.push({ path: display, code: 'SKIPPED', message });
    setTimes(self, BigInt(n.mtime), BigInt(n.mtime));
  }

  /** A fresh temp name: this run's random prefix and a counter (a random draw per file cost a getpid each). */
  private tmpName(dir: Buffer): Buffer {
    const tmp = join(dir, Buffer.from(`.mv-restore-${this.tmpPrefix}${(this.tmpCount++ % 0x1000000).toString(16).padStart(6, '0')}.tmp`));
    this.temps.add(tmp);
    return tmp;
  }
  /** Temp names given out and not yet placed or removed (their folders are open: `/proc/self/fd/N/...`). */
  private readonly temps = new Set<Buffer>();

  /** Ctrl-C or SIGTERM (on-interrupt.ts): the temp files being written are removed, not left in the target. */
  removeTemps(): void {
    for (const tmp of this.temps) {
      try {
        sync.unlink(tmp);
      } catch {
        // not made yet, or already placed
      }
    }
  }
  private readonly tmpPrefix = randomBytes(5).toString('hex');
  private tmpCount = 0;

  /** In mode 'new', refuses a name that exists before anything is written for it (place() refuses it again, atomically). */
  private refuseExisting(path: Buffer, display: string): void {
    if (this.o.mode === 'new' && sync.lstat(path)) throw notOverwritten(display);
  }

  private async restoreFile(dir: Buffer, path: Buffer, n: TreeNode, display: string): Promise<void> {
    // Hard links: the first name of an inode writes the content, every later name links to it
    // (claimed before any await, so names restored in parallel agree on which one is first). When
    // the first fails, the next waiting name writes it instead and the others link to that one.
    const inode = n.links > 1 ? `${n.dev}:${n.inode}` : undefined;
    for (let pending; inode && (pending = this.inodes.get(inode)); ) {
      this.refuseExisting(path, display); // a first name's FileWriter refuses it where it runs
      const first = await pending;
      if (!first) continue;
      await this.viaTemp(dir, path, display, (tmp) => link(first, tmp));
      this.result.files++;
      this.result.verified++; // another name of the inode just verified
      this.progressed();
      return;
    }
    let written: (p: Buffer | undefined) => void = () => {};
    if (inode) this.inodes.set(inode, new Promise((r) => (written = r)));
    let placed = false;
    try {
      await this.writeFile(dir, path, n, display);
      placed = true;
      if (inode) this.dirs.get(dir.toString())!.pinned = true; // later names link to this one
    } finally {
      if (!placed && inode) this.inodes.delete(inode);
      written(placed ? path : undefined);
    }
  }

  /**
   * Writes the file to a temp file, verifies and places it (FileWriter). From local packs that is
   * all done in a crypto pool thread, one file per thread at a time: on two cores the file-system
   * calls of a restore are most of its CPU (an inode's creation alone can cost ~1 ms here), and
   * the main thread then only walks trees and hands out files. A store without local packs, or a
   * chunk the thread could not read or authenticate, goes through the repository (chunks()).
   */
  private async writeFile(dir: Buffer, path: Buffer, n: TreeNode, display: string): Promise<void> {
    const file: FileTarget = { tmp: this.tmpName(dir), path, display, replace: this.o.mode, mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime, xattrs: n.xattrs };
    let done: RestoredFile;
    let again: Buffer | undefined;
    try {
      const local = await this.localChunks(n.content!);
      const there = local && (await this.inThread(file, local));
      if (there && !('again' in there)) done = there;
      else if (there && this.o.mode === 'new' && (await this.placedAlready(path, n.content!))) done = { bytes: n.size, skipped: [] };
      // a fresh temp name: a thread that died may still be finishing with its own for a moment
      else done = await this.writeHere({ ...file, tmp: (again = this.tmpName(dir)) }, n.content!);
    } finally {
      this.temps.delete(file.tmp);
      if (again) this.temps.delete(again);
    }
    for (const message of done.skipped) this.result.errors.push({ path: display, code: 'SKIPPED', message });
    this.result.files++;
    this.result.verified++;
    this.result.bytes += done.bytes;
    this.progressed();
  }

  private progressed(): void {
    this.o.onProgress?.({ files: this.result.files, bytes: this.result.bytes, totalFiles: this.totalFiles, totalBytes: this.totalBytes });
  }

  /**
   * The file written in a pool thread. A thread that died meanwhile (out of memory, a bug) left its
   * temp file behind: it is removed here and the file given back, as for a chunk the thread could
   * not read (the previous build opened chunks in the threads and fell back to the repository too).
   */
  private async inThread(file: FileTarget, local: LocalChunk[]): Promise<RestoredFile> {
    try {
      return await cryptoPool().restoreFile(this.repo.keys.chunkId, file, local);
    } catch (err) {
      if (!(err instanceof MedvaultError && err.retryable)) throw err;
      try {
        sync.unlink(file.tmp);
      } catch {
        // never made, or removed by the thread
      }
      return { again: err.message };
    }
  }

  /**
   * Whether `path` holds the file as the snapshot has it, every chunk read back and checked against
   * its id: a pool thread that died may have placed the file just before (placing is its last step),
   * and in mode 'new' writing it again would refuse the name it just restored.
   */
  private async placedAlready(path: Buffer, ids: string[]): Promise<boolean> {
    let fd: number;
    try {
      fd = sync.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return false;
    }
    try {
      if (!fstatSync(fd).isFile()) return false;
      let pos = 0;
      for (const id of ids) {
        const e = await this.repo.blobEntry(id);
        const b = Buffer.allocUnsafe(e?.rawLength ?? 0);
        if (!e || readSync(fd, b, 0, b.length, pos) !== b.length || this.repo.blobId(b) !== id) return false;
        pos += b.length;
      }
      return readSync(fd, Buffer.alloc(1), 0, 1, pos) === 0;
    } finally {
      closeSync(fd);
    }
  }

  /** Where each chunk is on a local disk, or undefined when the store has no local packs or the catalog does not know a chunk. */
  private async localChunks(ids: string[]): Promise<LocalChunk[] | undefined> {
    const store = this.repo.store as { localPath?: (kind: 'pack', name: string) => string };
    if (!store.localPath) return undefined;
    try {
      return await Promise.all(
        ids.map(async (id) => {
          const entry = await this.repo.blobEntry(id);
          if (!entry || entry.type !== 'data') throw new Error('not a data blob in the catalog');
          return { entry, path: store.localPath!('pack', entry.pack), packKey: await this.repo.packKeyOf(entry.pack) };
        }),
      );
    } catch {
      return undefined; // the repository's path names what is wrong
    }
  }

  /** The file on this thread, its chunks read through the repository (authenticated ahead in the crypto pool). */
  private async writeHere(file: FileTarget, ids: string[]): Promise<{ bytes: number; skipped: string[] }> {
    const w = FileWriter.create(file);
    try {
      for await (const plain of this.chunks(ids)) w.write(plain);
      return w.finish();
    } catch (err) {
      w.abort();
      throw err;
    }
  }

  /**
   * A file's chunks in order, each authenticated (AES-GCM, then its id) in the crypto pool while
   * the next ones are read (at most CHUNKS_AHEAD bytes queued). Anything unexpected on that path
   * goes through repo.loadBlob, which rebuilds a stale catalog or names the damaged blob and pack.
   */
  private async *chunks(ids: string[]): AsyncGenerator<Buffer> {
    const queue: { size: number; plain: Promise<Buffer> }[] = [];
    let queued = 0;
    let i = 0;
    const entries: Promise<BlobEntry | undefined>[] = [];
    const entry = (k: number) => (entries[k] ??= this.repo.blobEntry(ids[k]!));
    const { store } = this.repo;
    const prefetch = async () => {
      const packs: string[] = [];
      for (let k = i, bytes = 0; k < ids.length && bytes < PREFETCH_AHEAD; k++) {
        const e = await entry(k);
        bytes += e?.rawLength ?? 0;
        if (e && !packs.includes(e.pack)) packs.push(e.pack);
      }
      store.prefetch!('pack', packs);
    };
    try {
      for (;;) {
        if (store.prefetch) await prefetch();
        while (i < ids.length && (queue.length === 0 || queued < CHUNKS_AHEAD)) {
          const e = await entry(i);
          const id = ids[i++]!;
          const plain = this.openChunk(id, e);
          plain.catch(() => undefined); // awaited below, in order
          queue.push({ size: e?.rawLength ?? 0, plain });
          queued += e?.rawLength ?? 0;
        }
        const next = queue.shift();
        if (!next) return;
        queued -= next.size;
        yield await next.plain;
      }
    } finally {
      await Promise.allSettled(queue.map((q) => q.plain));
    }
  }

  private async openChunk(id: string, e: BlobEntry | undefined): Promise<Buffer> {
    try {
      if (!e || e.type !== 'data') throw new Error('not a data blob in the catalog');
      const [key, sealed] = await Promise.all([this.repo.packKeyOf(e.pack), this.repo.store.get('pack', e.pack, { offset: e.offset, length: e.length })]);
      if (!sealed) throw new Error('pack missing');
      return await cryptoPool().open(this.repo.keys.chunkId, key, e, sealed);
    } catch {
      return this.repo.loadBlob(id, 'data');
    }
  }

  private async restoreSymlink(dir: Buffer, path: Buffer, n: TreeNode): Promise<void> {
    await this.viaTemp(dir, path, n.display, async (tmp) => {
      await symlink(Buffer.from(n.target!, 'base64url'), tmp);
      if (ROOT) await lchown(tmp, n.uid, n.gid).catch(() => undefined);
      setTimes(tmp, BigInt(n.mtime), BigInt(n.mtime));
    });
  }

  /**
   * Makes an entry under a fresh temp name in `dir` (`make`), then gives it its name (place(): in
   * mode 'new' an existing name is refused atomically); the temp name never outlives the call.
   */
  private async viaTemp(dir: Buffer, path: Buffer, display: string, make: (tmp: Buffer) => Promise<void>): Promise<void> {
    const tmp = this.tmpName(dir);
    try {
      await make(tmp);
      place(tmp, path, this.o.mode, display);
    } finally {
      await rm(tmp, { force: true });
      this.temps.delete(tmp);
    }
  }

  /**
   * FIFOs are made again (mknod; never opened); device nodes too when running as root (otherwise
   * reported as skipped); sockets belong to a running program and are reported, not recreated.
   */
  private async restoreSpecial(dir: Buffer, path: Buffer, n: TreeNode, display: string): Promise<void> {
    const type = { fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000 }[n.type as 'fifo' | 'chardev' | 'blockdev'];
    if (type === undefined || (n.type !== 'fifo' && !ROOT)) {
      this.result.errors.push({ path: display, code: 'SKIPPED', message: `${display}: ${n.type} recorded, not recreated${type === undefined ? '' : ' (device nodes need root)'}` });
      return;
    }
    this.refuseExisting(path, display);
    await this.viaTemp(dir, path, display, async (tmp) => {
      mknod(tmp, type | n.mode, BigInt(n.rdev ?? '0'));
      if (ROOT) await lchown(tmp, n.uid, n.gid).catch(() => undefined);
      await chmod(tmp, n.mode);
      setTimes(tmp, BigInt(n.mtime), BigInt(n.mtime));
    });
  }

  /**
   * Makes everything written durable: one syncfs(2) of the target's file system on `fd` (opened
   * before the first write). The read-back verified the page cache; a write error at writeback
   * (a failing or thin-provisioned disk) is reported here, as the run's failure of the target.
   */
  async syncTarget(fd: number, target: string): Promise<void> {
    try {
      await syncfs(fd);
    } catch (cause) {
      this.fail('.', new MedvaultError(codes.STORAGE_FAILED, `${target}: the disk failed to store what was restored (${(cause as Error).message}); restored files may not be on it as verified`, { cause }));
    }
  }
}
