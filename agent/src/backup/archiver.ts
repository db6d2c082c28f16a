/**
 * backup/: the Archiver reads a source folder and commits one snapshot to a repository.
 *
 * 1. Take the writer lock; pick the parent (latest snapshot of the store) for incremental reuse,
 *    and the walk cache the backup that made it left (walk-cache.ts), when it is usable.
 * 2. Walk the source with Buffer names (lstat, never follow symlinks), depth first, sorted by bytes;
 *    each folder's names and lstats come in one call from the thread pool (fsx scanDir); a few
 *    entries of a folder at once so reads overlap the CPU work. A folder whose listing prints as
 *    the walk cache recorded for its parent tree is that tree (unless a subfolder changed): only
 *    its subfolders are walked, and nothing of it is loaded or compared entry by entry.
 * 3. A file whose size, mtime, ctime and inode equal its parent node's reuses its chunk list
 *    (incremental/continuous only); any other file is read (O_NOFOLLOW), chunked, and each chunk
 *    saved unless its id is already known. A file that changed while read is read once more, then
 *    flagged; one whose ctime is within a clock tick of its read is read once more after the tick. Unreadable entries are reported and the snapshot marked partial, never dropped silently.
 *    Its extended attributes are listed again only when its inode or ctime differs from the parent
 *    node's (setting or removing one updates the ctime).
 * 4. Each folder becomes a tree blob, unless every node equals the parent tree's: then it is that
 *    tree. Then packs and index are flushed; then the snapshot is written.
 * 5. Each folder's old and new nodes also go to a TreeDiff, so the ransomware guard gets its
 *    counts without walking both snapshots again.
 * 6. After the snapshot, what was seen in each folder becomes the store's walk cache.
 */
import { lstat, scanDir, readlink, getXattrs, sync } from '../platform/long-paths.js';
import { constants, closeSync, fstatSync, read as fsRead, type BigIntStats } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { MedvaultError, codes, printable } from '@medvault/protocol';
import type { Repository } from '../repo/repository.js';
import type { RepoWriter, WrittenObject } from '../repo/writer.js';
import { encodeTree, nameBytes, sameNode, type TreeNode, type NodeType } from '../repo/tree.js';
import type { Snapshot } from '../repo/snapshot-file.js';
import { Chunker } from './chunker.js';
import { cryptoPool } from '../crypto/pool.js';
import { orderSnapshots } from '../prune/policy.js';
import { RESTORE_TEMP } from '../restore/restorer.js';
import { TreeDiff, type ChangeStats } from '../guard/ransomware.js';
import { listingPrint, loadWalkCache, saveWalkCache, type SeenFolder } from './walk-cache.js';

export type BackupJob = Snapshot['job'];

export interface BackupOptions {
  /** The record store's name (from the config). */
  store: string;
  /** The folder to back up. */
  source: string;
  job: BackupJob;
  tags?: string[];
  actor?: Snapshot['actor'];
  onProgress?: (p: { files: number; bytes: number }) => void;
}

export interface BackupResult {
  snapshot: string;
  /**
   * The job as the snapshot records it: the one asked for, except that a run with no parent
   * snapshot of the store in this repository is 'full' (it read every file: there was nothing to trust).
   */
  job: BackupJob;
  repo: string;
  partial: boolean;
  summary: Snapshot['summary'];
  errors: { path: string; message: string }[];
  /** Files that changed while being read (stored as read the second time). */
  changed: string[];
  /** Every object written by this run, for replication. */
  written: WrittenObject[];
  /**
   * What changed against the parent snapshot (the ransomware guard's input), gathered during the
   * walk; undefined without a parent, or when a parent folder could not be read.
   */
  changes?: ChangeStats;
  durationMs: number;
}

const READ_SIZE = 1024 * 1024;
const MAX_ERRORS = 1000;
/**
 * Entries of one folder processed at once, so file I/O overlaps hashing and sealing and a cold
 * disk has several reads in flight; nested folders multiply it. Bench data set, initial backup:
 * 4 took 8.6 s warm and 9.5-9.8 s after drop_caches, 2 took 10.4-10.6 s and 11.7-11.8 s, at
 * 277-309 MiB peak RSS against 239-246 (RUN_INFLIGHT bounds the chunks they queue).
 */
const ENTRY_CONCURRENCY = 4;
/**
 * A folder's subfolders among its next this many entries have their listing and parent tree
 * started before the walk reaches them, so the listing's thread-pool round trip and the tree's
 * pack read overlap the work on the entries before them.
 */
const FOLDERS_AHEAD = 8;
/**
 * Bytes of one file's chunks queued for the crypto pool before its reading waits (memory bound).
 * Several files are read at once (ENTRY_CONCURRENCY in each of several folders), so this is
 * multiplied: 2 MiB kept the full bench's initial backup ~30-60 MiB lower than 4 MiB, as fast.
 */
const PER_FILE_INFLIGHT = 2 * 1024 * 1024;
/**
 * Bytes of chunks queued for the crypto pool by all files of the run: reading waits beyond this
 * too (a file still queues one chunk when it has none in flight). Without it the files read at
 * once held up to ~100 MiB of chunks waiting for the pool once reads ran at page-cache speed.
 */
const RUN_INFLIGHT = 24 * 1024 * 1024;
/**
 * How long a write may still leave a file's ctime and mtime as they are: file systems with coarse
 * timestamps (ext4 and xfs before Linux 6.13, ramfs) stamp each change with the last clock tick's
 * time (ticks of 1-10 ms), so a file written again in the tick it was read in keeps the stat it was
 * read with, and every later incremental would trust what was read (walk-break.test.ts). A file
 * whose ctime is younger than this when read is read once more after it (by the real clock, which
 * the file system's timestamps follow, not the repository's).
 */
const TICK_MS = 20;

/** An entry's lstat as the tree records it: times, inode and devices as decimal strings, size in bytes. */
interface EntryStat {
  type: NodeType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  ctime: string;
  inode: string;
  dev: string;
  links: number;
  rdev: string;
}

const S_IFMT = 0o170000;
const fileTypes = new Map<number, NodeType>([[0o100000, 'file'], [0o040000, 'dir'], [0o120000, 'symlink'], [0o010000, 'fifo'], [0o140000, 'socket'], [0o020000, 'chardev']]);
const typeOf = (mode: number): NodeType => fileTypes.get(mode & S_IFMT) ?? 'blockdev';

function statOf(st: BigIntStats): EntryStat {
  const mode = Number(st.mode);
  return { type: typeOf(mode), mode: mode & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size), mtime: st.mtimeNs.toString(), ctime: st.ctimeNs.toString(), inode: st.ino.toString(), dev: st.dev.toString(), links: Number(st.nlink), rdev: st.rdev.toString() };
}

const errnoNames = getSystemErrorMap();

/** A folder's entries with their lstat (or the error lstat gave, like Node's), in readdir order, and the listing's print (walk-cache.ts). */
interface Listing {
  entries: { name: Buffer; st: EntryStat | NodeJS.ErrnoException }[];
  fp: string;
}

async function scanFolder(dir: Buffer): Promise<Listing> {
  const { names, nums, text } = await scanDir(dir);
  const lines = text.split('\n');
  const out: Listing['entries'] = [];
  for (let i = 0, at = 0; i * 6 < nums.length; i++) {
    const end = names.indexOf(0, at);
    const name = names.subarray(at, end);
    at = end + 1;
    const k = i * 6;
    const errno = nums[k]!;
    if (errno !== 0) {
      const [code, message] = errnoNames.get(-errno) ?? ['EUNKNOWN', 'unknown error'];
      out.push({ name, st: Object.assign(new Error(`${code}: ${message}, lstat '${join(dir, name).toString()}'`), { code, errno: -errno, syscall: 'lstat' }) });
      continue;
    }
    const [mtime, ctime, inode, dev, rdev] = lines[i]!.split(' ') as [string, string, string, string, string];
    const mode = nums[k + 1]!;
    out.push({ name, st: { type: typeOf(mode), mode: mode & 0o7777, uid: nums[k + 2]!, gid: nums[k + 3]!, size: nums[k + 4]!, mtime, ctime, inode, dev, links: nums[k + 5]!, rdev } });
  }
  return { entries: out, fp: listingPrint(names, nums, text) };
}

/**
 * Whether a file is unchanged between two stats. ctime too: a writer that puts the mtime back
 * (rsync --inplace --times, cp --preserve onto an existing file) keeps size and mtime while the
 * content and the ctime change.
 */
function sameFile(a: EntryStat, b: EntryStat): boolean {
  return a.size === b.size && a.mtime === b.mtime && a.ctime === b.ctime && a.inode === b.inode;
}

const join = (dir: Buffer, name: Buffer) => Buffer.concat([dir, Buffer.from('/'), name]);

/**
 * The paths a parent snapshot reported errors for (its nodes there may lack what could not be
 * read, extended attributes included), or undefined when its error list was cut short (any path
 * may be one).
 */
function doubtfulPaths(parent: Snapshot): Set<string> | undefined {
  return parent.errors.length < parent.summary.errors ? undefined : new Set(parent.errors.map((e) => printable(e.path))); // raw in snapshots made before names were escaped
}

/** A folder of the parent snapshot: its tree id and its nodes by raw name. */
interface ParentDir {
  id: string;
  nodes: Map<string, TreeNode>;
}

/** A subfolder's listing and (unless the walk cache knows it) parent tree, started ahead of the walk (FOLDERS_AHEAD). */
interface Ahead {
  listing: Promise<Listing>;
  parent?: Promise<ParentDir | undefined>;
}

/** A name as nodes show it (TreeNode.display): UTF-8, control characters escaped. */
const shownName = (name: Buffer): string => printable(name.toString('utf8'));

/** How an entry is named in messages and the doubtful-paths set: its path below the source, as shown. */
const displayOf = (rel: string, name: Buffer): string => (rel ? `${rel}/${shownName(name)}` : shownName(name));

/** What the walk cache records of a folder saved from a listing with print `fp`. */
function seenFolder(fp: string, nodes: TreeNode[]): SeenFolder {
  const f: SeenFolder = { fp, files: 0, bytes: 0, symlinks: 0, others: 0, subdirs: {} };
  for (const n of nodes) {
    if (n.type === 'file') {
      f.files++;
      f.bytes += n.size;
    } else if (n.type === 'dir') f.subdirs[n.name] = n.subtree!;
    else if (n.type === 'symlink') f.symlinks++;
    else f.others++;
  }
  return f;
}

/**
 * Whether a folder's nodes are exactly its parent tree's, so the folder is that tree: the parent's
 * tree was just loaded and authenticated, and encoding the same nodes again and MACing them would
 * only find its id.
 */
function isParentTree(now: TreeNode[], parent: ParentDir): boolean {
  if (now.length !== parent.nodes.size) return false;
  for (const n of now) {
    const p = parent.nodes.get(n.name);
    if (!p || !sameNode(n, p)) return false;
  }
  return true;
}

export class Archiver {
  constructor(private readonly repo: Repository) {}

  /** Backs up `o.source` and commits a snapshot; throws only when nothing could be committed. */
  async backup(o: BackupOptions): Promise<BackupResult> {
    const started = this.repo.now();
    const root = await lstat(o.source, { bigint: true }).catch((cause) => {
      throw new MedvaultError(codes.NOT_FOUND, `store ${o.store}: cannot read source ${o.source}: ${(cause as Error).message}`, { cause });
    });
    if (!root.isDirectory()) throw new MedvaultError(codes.CONFIG_INVALID, `store ${o.store}: source ${o.source} is not a folder`);
    const w = await this.repo.writer();
    try {
      // the parent is the newest in chain order, not by clock: a clock that jumped back changes nothing
      const parent = orderSnapshots((await this.repo.snapshots()).filter((s) => s.store === o.store)).pop()?.s;
      const parentSnap = parent ? await this.repo.loadSnapshot(parent.hash) : undefined;
      const job = parent ? o.job : 'full';
      const run = new Run(this.repo, w, o.job !== 'full', parentSnap ? new TreeDiff() : undefined, o.onProgress, parentSnap && doubtfulPaths(parentSnap));
      if (parent && o.job !== 'full' && parentSnap!.summary.errors === 0) run.seen = await loadWalkCache(this.repo, o.store, parent.hash);
      const tree = await run.saveDir(Buffer.from(o.source), '', parentSnap?.tree);
      const partial = run.errors.length > 0;
      const summary = { ...run.summary, changed: run.changed.length, errors: run.errors.length, storedBytes: 0 };
      const snap: Snapshot = {
        v: 1,
        time: this.repo.now(),
        store: o.store,
        job,
        tree,
        host: hostname(),
        source: o.source,
        ...(parent ? { parent: parent.hash } : {}),
        partial,
        summary,
        errors: run.errors.slice(0, MAX_ERRORS),
        tags: o.tags ?? [],
        actor: o.actor ?? { kind: 'agent', id: 'medvault-agent' },
      };
      await w.flush();
      summary.storedBytes = w.written.filter((x) => x.kind === 'pack').reduce((n, x) => n + x.size, 0);
      const hash = await w.saveSnapshot(snap);
      // a file that changed while read has a node with a later stat than its listing's
      if (!partial && run.changed.length === 0) await saveWalkCache(this.repo, o.store, hash, run.seenNow).catch(() => undefined);
      // after the flush: the sample reads new chunks through the catalog; a failure here leaves
      // the guard to compare the snapshots itself (and report what it cannot read)
      const changes = await run.diff?.finish(this.repo).catch(() => undefined);
      return { snapshot: hash, job, repo: this.repo.id, partial, summary, errors: run.errors, changed: run.changed, written: [...w.written], durationMs: this.repo.now() - started, ...(changes ? { changes } : {}) };
    } finally {
      await w.release();
    }
  }
}

/** The state of one backup run. */
class Run {
  readonly errors: { path: string; message: string }[] = [];
  readonly changed: string[] = [];
  readonly summary = { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, newBytes: 0, reused: 0 };
  /** Chunk bytes of all files queued for the pool (RUN_INFLIGHT). */
  private outstanding = 0;

  constructor(
    private readonly repo: Repository,
    private readonly w: RepoWriter,
    private readonly reuse: boolean,
    /** Gathers the changes against the parent snapshot; undefined without one. */
    readonly diff: TreeDiff | undefined,
    private readonly onProgress?: (p: { files: number; bytes: number }) => void,
    /** Paths whose parent node may be incomplete (doubtfulPaths); undefined: any may be. */
    private readonly doubtful?: Set<string>,
  ) {}

  /** Folders seen by the backup that made the parent (walk cache), by tree id; undefined: none usable. */
  seen: Map<string, SeenFolder> | undefined;
  /** Folders seen by this run, for the next one's walk cache. */
  readonly seenNow = new Map<string, SeenFolder>();

  /** The parent's version of a folder, or undefined when unreadable (then nothing is reused). */
  async parentTree(id: string | undefined): Promise<ParentDir | undefined> {
    if (!id) return undefined;
    try {
      const nodes = await this.repo.loadTree(id);
      return { id, nodes: new Map(nodes.map((n) => [n.name, n])) };
    } catch (err) {
      this.diff?.fail(err as Error);
      return undefined;
    }
  }

  private fail(path: string, err: unknown): void {
    this.errors.push({ path, message: printable((err as Error)?.message ?? String(err)) }); // a system message may quote the raw path
  }

  /**
   * Saves one folder's contents as a tree blob; returns its id. `parentId`: the folder's tree in
   * the parent snapshot; `early`: its listing (and parent tree) started by lookAhead.
   */
  async saveDir(dir: Buffer, rel: string, parentId: string | undefined, early?: Ahead): Promise<string> {
    let l: Listing | undefined;
    try {
      l = await (early?.listing ?? scanFolder(dir));
    } catch (err) {
      this.fail(rel || '.', err);
    }
    const entries = (l?.entries ?? []).filter((e) => !RESTORE_TEMP.test(e.name.toString('latin1'))).sort((a, b) => Buffer.compare(a.name, b.name));
    const keys = entries.map((e) => e.name.toString('base64url'));
    const seen = parentId === undefined ? undefined : this.seen?.get(parentId);
    if (l && seen?.fp === l.fp) {
      const dirs = keys.filter((_, i) => (entries[i]!.st as EntryStat).type === 'dir');
      if (dirs.length === Object.keys(seen.subdirs).length && dirs.every((k) => seen.subdirs[k] !== undefined)) return this.seenDir(dir, rel, parentId!, seen, entries, keys, l.fp);
    }
    const parent = early?.parent ? await early.parent : await this.parentTree(parentId);
    return this.walkDir(dir, rel, parent, entries, keys, l?.fp);
  }

  /**
   * A folder whose listing is as when tree `id` was made (walk cache): only its subfolders are
   * walked, and its tree is `id` unless one of them changed (then the folder is walked as any
   * other, its subfolders' trees known).
   */
  private async seenDir(dir: Buffer, rel: string, id: string, seen: SeenFolder, entries: Listing['entries'], keys: string[], fp: string): Promise<string> {
    const done = new Map<string, string>();
    await this.forEach(dir, entries, keys, (k) => seen.subdirs[k], async (i, early) => {
      if ((entries[i]!.st as EntryStat).type !== 'dir') return;
      const display = displayOf(rel, entries[i]!.name);
      done.set(keys[i]!, await this.saveDir(join(dir, entries[i]!.name), display, seen.subdirs[keys[i]!], early));
    });
    if ([...done].some(([k, sub]) => seen.subdirs[k] !== sub)) return this.walkDir(dir, rel, await this.parentTree(id), entries, keys, fp, done);
    const s = this.summary;
    s.files += seen.files;
    s.reused += seen.files;
    s.bytes += seen.bytes;
    s.dirs += done.size;
    s.symlinks += seen.symlinks;
    s.others += seen.others;
    if (seen.files > 0) this.onProgress?.({ files: s.files, bytes: s.bytes });
    this.diff?.same(seen.files);
    this.seenNow.set(id, seen);
    return id;
  }

  /**
   * Runs `each` on every entry, ENTRY_CONCURRENCY at a time; the listings of subfolders among the
   * next FOLDERS_AHEAD entries are started early (but those in `done`), and their parent trees
   * (`parentOf` a key) unless the walk cache knows them.
   */
  private async forEach(dir: Buffer, entries: Listing['entries'], keys: string[], parentOf: (key: string) => string | undefined, each: (i: number, early?: Ahead) => Promise<void>, done?: Map<string, string>): Promise<void> {
    const ahead = new Map<number, Ahead>();
    let queued = 0;
    const lookAhead = (upTo: number) => {
      for (; queued < Math.min(upTo, entries.length); queued++) {
        const { name, st } = entries[queued]!;
        if (st instanceof Error || st.type !== 'dir' || done?.has(keys[queued]!)) continue;
        const prev = parentOf(keys[queued]!);
        const listing = scanFolder(join(dir, name));
        listing.catch(() => undefined); // awaited by saveDir, unless the entry fails first
        ahead.set(queued, { listing, ...(prev && !this.seen?.has(prev) ? { parent: this.parentTree(prev) } : {}) });
      }
    };
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < entries.length; i = next++) {
        lookAhead(i + FOLDERS_AHEAD);
        const early = ahead.get(i);
        ahead.delete(i);
        await each(i, early);
      }
    };
    await Promise.all(Array.from({ length: Math.min(ENTRY_CONCURRENCY, entries.length) }, worker));
  }

  /**
   * A folder's tree from its entries, each compared with the parent's node (`parent`); `done`:
   * subfolders' trees already saved, by key. `fp`: the listing's print, for the walk cache.
   */
  private async walkDir(dir: Buffer, rel: string, parent: ParentDir | undefined, entries: Listing['entries'], keys: string[], fp?: string, done?: Map<string, string>): Promise<string> {
    const nodes: (TreeNode | undefined)[] = new Array(entries.length);
    let vanished = false;
    const prevDir = (k: string) => {
      const p = parent?.nodes.get(k);
      return p?.type === 'dir' ? p.subtree : undefined;
    };
    await this.forEach(dir, entries, keys, prevDir, async (i, early) => {
      const { name, st } = entries[i]!;
      const key = keys[i]!;
      const display = displayOf(rel, name);
      const prev = parent?.nodes.get(key);
      try {
        if (st instanceof Error) throw st;
        const node = this.base(key, name, st);
        nodes[i] = this.unchangedFile(node, display, prev) ?? (await this.saveEntry(join(dir, name), display, node, st, prev, early, done?.get(key)));
      } catch (err) {
        // Deleted while the backup ran: simply gone. Anything else is reported (the snapshot is
        // partial) and the previous version is kept, so an unreadable record is never recorded
        // as deleted.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return void (vanished = true);
        this.fail(display, err);
        if (prev) nodes[i] = prev;
        if (prev?.type === 'dir' && prev.subtree) this.diff?.kept(prev.subtree);
      }
    }, done);
    const now = nodes.filter((n): n is TreeNode => n !== undefined);
    this.diff?.folder(parent?.nodes.values(), now);
    const id = parent && isParentTree(now, parent) ? parent.id : (await this.w.saveBlob('tree', encodeTree(now))).id;
    // a tree that lacks an entry its listing names is not what that listing makes: were it recorded,
    // an entry that was only away for a moment (its folder moved away and back) would stay missing
    if (fp !== undefined && !vanished) this.seenNow.set(id, seenFolder(fp, now));
    return id;
  }

  /** An entry's node without content, subtree, target, device or attributes; `key` is its name in base64url. */
  private base(key: string, name: Buffer, st: EntryStat): TreeNode {
    return {
      name: key,
      display: shownName(name),
      type: st.type,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      mtime: st.mtime,
      ctime: st.ctime,
      size: st.type === 'file' ? st.size : 0,
      inode: st.inode,
      dev: st.dev,
      links: st.links,
    };
  }

  /**
   * The node of a file that is as its parent node recorded it (size, mtime, ctime, inode; its
   * attributes with it, see xattrsUnchanged) and whose chunks are all stored (each in the id set,
   * or all of them vouched for by a usable walk cache), without waiting for anything: most of an
   * incremental's entries, so they cost no promise. Undefined when the file must go through
   * saveEntry (changed, new, or the blob id set not loaded yet).
   */
  private unchangedFile(node: TreeNode, display: string, prev: TreeNode | undefined): TreeNode | undefined {
    if (node.type !== 'file' || !this.reusable(node, prev) || !this.xattrsUnchanged(prev, node, display)) return undefined;
    if (!this.seen) for (const c of prev.content) if (this.w.hasBlobNow(c) !== true) return undefined; // a usable walk cache vouches for them
    this.counted(node.size);
    this.summary.reused++;
    // `node` was just made for this entry: completed in place (same key order as saveEntry's spreads)
    node.content = prev.content;
    if (prev.xattrs) node.xattrs = prev.xattrs;
    return node;
  }

  /** Whether `prev` says a file with `node`'s stat has its content (incremental and continuous runs only). */
  private reusable(node: TreeNode, prev: TreeNode | undefined): prev is TreeNode & { content: string[] } {
    return this.reuse && prev?.type === 'file' && prev.content !== undefined && prev.size === node.size && prev.mtime === node.mtime && prev.ctime === node.ctime && prev.inode === node.inode;
  }

  private counted(bytes: number): void {
    this.summary.files++;
    this.summary.bytes += bytes;
    this.onProgress?.({ files: this.summary.files, bytes: this.summary.bytes });
  }

  /**
   * `subtree`: a folder's tree, already saved (seenDir). Attributes are read after the stat the node
   * records: a file's node has the stat taken after its content was read, so its attributes come
   * after that (read before, one set while the file was read was missing from every later run,
   * whose unchanged ctime vouched for the stale set).
   */
  private async saveEntry(path: Buffer, display: string, node: TreeNode, st: EntryStat, prev: TreeNode | undefined, early?: Ahead, subtree?: string): Promise<TreeNode | undefined> {
    const x = (n: TreeNode) => (this.xattrsUnchanged(prev, n, display) ? (prev!.xattrs ? { xattrs: prev!.xattrs } : {}) : this.xattrs(path, display));
    switch (node.type) {
      case 'dir': {
        this.summary.dirs++;
        return { ...node, ...x(node), subtree: subtree ?? (await this.saveDir(path, display, prev?.type === 'dir' ? prev.subtree : undefined, early)) };
      }
      case 'symlink':
        this.summary.symlinks++;
        return { ...node, ...x(node), target: (await readlink(path, { encoding: 'buffer' })).toString('base64url') };
      case 'file': {
        const saved = await this.saveFile(path, display, node, st, prev);
        return { ...saved, ...x(saved) };
      }
      default:
        // FIFOs, sockets and device nodes are recorded, never opened.
        this.summary.others++;
        return { ...(st.type === 'chardev' || st.type === 'blockdev' ? { ...node, rdev: st.rdev } : node), ...x(node) };
    }
  }

  /**
   * Whether `prev` is the same inode as `node` with the same ctime, so its extended attributes still
   * hold: setting or removing one (an ACL too) updates the ctime. Listing them for every entry cost
   * 120-145 ms of an incremental's CPU at 22,000 files. Not in a full run, and not where the parent
   * reported an error (its node may lack attributes it could not read).
   */
  private xattrsUnchanged(prev: TreeNode | undefined, node: TreeNode, display: string): boolean {
    return this.reuse && prev !== undefined && prev.type === node.type && prev.inode === node.inode && prev.dev === node.dev && prev.ctime === node.ctime && this.doubtful !== undefined && !this.doubtful.has(display);
  }

  /**
   * The entry's extended attributes (never following a symlink); an unreadable set is reported. An
   * entry deleted since (a file just after its content was read) throws ENOENT: it is simply gone.
   */
  private xattrs(path: Buffer, display: string): { xattrs?: [string, string][] } {
    try {
      const list = getXattrs(path);
      return list.length ? { xattrs: list.map(([n, v]) => [n, v.toString('base64url')] as [string, string]) } : {};
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
      this.fail(display, new Error(`extended attributes unreadable: ${(err as Error).message}`));
      return {};
    }
  }

  private async saveFile(path: Buffer, display: string, node: TreeNode, st: EntryStat, prev: TreeNode | undefined): Promise<TreeNode> {
    if (this.reusable(node, prev)) {
      let all = true;
      if (!this.seen) for (const c of prev.content) if (!(await this.w.hasBlob(c))) all = false;
      if (all) {
        this.counted(node.size);
        this.summary.reused++;
        return { ...node, content: prev.content };
      }
    }
    let before = st;
    let waited = false;
    for (let attempt = 0; ; attempt++) {
      const { content, opened, after, read } = await this.readFile(path);
      // a read after the tick's wait is judged on its own (stat at open and after reading): a change
      // during the wait tore nothing (judged against the walk's stat, a file appended every 10 ms
      // was never stored: 0-2 of 300 such files a run)
      const stable = sameFile(waited ? opened : before, after) && read === after.size;
      if (!stable && attempt === 1) {
        // Changed during both reads: what was read may be torn, so it is not stored.
        throw new MedvaultError(codes.STORAGE_FAILED, `${display}: changed while being read, twice; not stored (the previous version is kept), next run retries`);
      }
      const age = Date.now() - Number(BigInt(after.ctime) / 1_000_000n);
      if (stable && age < TICK_MS && !waited) {
        // read again once the tick is over: the same attempt, nothing is known to have changed (a
        // ctime ahead of a clock that was set back waits one tick)
        waited = true;
        await sleep(Math.min(TICK_MS - age, TICK_MS) + 1);
        attempt--;
        continue;
      }
      if (stable) {
        if (attempt === 1) this.changed.push(display);
        this.counted(read);
        return { ...this.base(node.name, Buffer.from(node.name, 'base64url'), after), content };
      }
      before = after;
    }
  }

  /**
   * Reads, chunks and saves one file through a descriptor; the next read overlaps the current
   * chunk's work. Open, stat and close run on this thread (the walk's lstat just read the inode, so
   * they cost their system call; the thread-pool round trips cost more); reads go to the pool, so
   * a cold disk blocks none but the file read (synchronous reads of small files were 12.2-12.5 s
   * against 9.5-9.8 s after drop_caches, and no faster warm).
   */
  private async readFile(path: Buffer): Promise<{ content: string[]; opened: EntryStat; after: EntryStat; read: number }> {
    const fd = sync.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    let pending: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    const saving = this.chunkSaver();
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new MedvaultError(codes.STORAGE_FAILED, 'is no longer a regular file');
      const chunker = new Chunker(this.repo.keys.gear, this.repo.config.chunker, true);
      // Reads up to the size fstat gave, the last one exact, so a small file is one read into a
      // buffer of its own size that becomes its chunk uncopied. A short read is the end (it shrank);
      // had it grown, the size check after reading sees it and the file is read again.
      const size = Number(st.size);
      let read = 0;
      let asked = 0;
      let eof = false;
      const next = async () => {
        const want = Math.min(READ_SIZE, size - asked);
        if (eof || want <= 0) return Buffer.alloc(0);
        asked += want;
        const buf = Buffer.allocUnsafeSlow(want);
        const n = await new Promise<number>((resolve, reject) => fsRead(fd, buf, 0, want, null, (err, r) => (err ? reject(err) : resolve(r))));
        eof = n < want;
        return n === want ? buf : buf.subarray(0, n);
      };
      pending = next();
      for (;;) {
        const buf = await pending;
        if (buf.length === 0) break;
        pending = next();
        read += buf.length;
        for (const c of chunker.push(buf)) await saving.add(c);
      }
      for (const c of chunker.end()) await saving.add(c);
      return { content: await saving.ids(), opened: statOf(st), after: statOf(fstatSync(fd, { bigint: true })), read };
    } finally {
      await pending.catch(() => undefined);
      await saving.settled();
      closeSync(fd);
    }
  }

  /** Chunks of one file in flight: ids and zstd in the crypto pool, then into the pack, in order. */
  private chunkSaver() {
    const all: Promise<string>[] = [];
    let done = 0;
    let outstanding = 0;
    const save = async (c: Buffer, measured?: (id: string) => void): Promise<string> => {
      const n = c.length;
      try {
        const r = await this.w.saveChunk(await cryptoPool().encode(this.repo.keys.chunkId, c));
        if (r.added) this.summary.newBytes += n;
        measured?.(r.id);
        return r.id;
      } finally {
        outstanding -= n;
        this.outstanding -= n;
      }
    };
    return {
      /** Queues a chunk (which is consumed); waits while the file has PER_FILE_INFLIGHT bytes queued. */
      add: async (c: Buffer) => {
        outstanding += c.length;
        this.outstanding += c.length;
        // the guard samples first chunks of changed files: measured here, it need not load them back
        // (incremental runs only: a full run reads every file, and the guard loads only its sample)
        const p = save(c, all.length === 0 && this.reuse ? this.diff?.measure(c) : undefined);
        p.catch(() => undefined); // handled by ids() or settled()
        all.push(p);
        while ((outstanding > PER_FILE_INFLIGHT || this.outstanding > RUN_INFLIGHT) && done < all.length) await all[done++];
      },
      ids: () => Promise.all(all),
      settled: () => Promise.allSettled(all),
    };
  }
}
