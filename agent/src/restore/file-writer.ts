/**
 * One restored file, from its temp file to its final name, on the calling thread: the restorer's
 * main thread (a store without local packs, a blob that needs the repository's repair path) and
 * the crypto pool's threads (restoreFile in pool-tasks.ts: a whole file from local packs) both
 * write with it, so the two paths cannot differ in what they write, verify or place.
 *
 * create() makes the temp file (O_EXCL, never following a symlink); write() leaves 4 KiB blocks
 * of zeros as holes and reads every chunk back at once, comparing it with the authenticated
 * plaintext; finish() checks the file ends there, sets owner, mode, extended attributes and
 * times, and places it: rename ('overwrite') or renameat2 RENAME_NOREPLACE ('new': refuses an
 * existing name atomically; link + unlink where the file system lacks it). abort() removes it.
 */
import { constants, writeSync, readSync, closeSync, ftruncateSync, fchmodSync, fchownSync } from 'node:fs';
import { MedvaultError, codes } from '@medvault/protocol/core';
import { sync, setTimes, setXattr } from '../platform/long-paths.js';
import { grown } from '../platform/fsx.js';

/** What a restored file becomes: its node's metadata and its names. */
export interface FileTarget {
  tmp: Buffer;
  path: Buffer;
  /** The path inside the snapshot, for messages. */
  display: string;
  /** 'new' refuses to replace an existing name, 'overwrite' replaces it. */
  replace: 'new' | 'overwrite';
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string. */
  mtime: string;
  xattrs?: [string, string][];
}

const ROOT = process.getuid?.() === 0;
/** File-system blocks of zeros inside a chunk are left as holes (the temp file is new, so a hole reads as zeros). */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);
/** Where written chunks are read back into (grown to the largest chunk), one per thread. */
let scratch = Buffer.alloc(0);
/** Whether renameat2 RENAME_NOREPLACE works here (one namespace operation a file instead of link + unlink). */
let noReplace = true;

/** How the message of an entry refused in mode 'new' ends. */
export const NOT_OVERWRITTEN = 'exists in the target; not overwritten (mode new)';

export function notOverwritten(display: string): MedvaultError {
  return new MedvaultError(codes.CONFIG_INVALID, `${display}: ${NOT_OVERWRITTEN}`);
}

export class FileWriter {
  private bytes = 0;
  private constructor(
    private fd: number,
    private readonly t: FileTarget,
  ) {}

  /** Makes the temp file; in mode 'new' first refuses a name that exists, before anything is written for it (place() refuses it again, atomically). */
  static create(t: FileTarget): FileWriter {
    if (t.replace === 'new' && sync.lstat(t.path)) throw notOverwritten(t.display);
    return new FileWriter(sync.open(t.tmp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600), t);
  }

  /** Appends one authenticated chunk: its blocks of zeros become holes, the rest is written and read back. */
  write(plain: Buffer): void {
    // a chunk that ends in holes ends before them: the file is extended to the chunk's end for the read-back
    if (writeSparse(this.fd, plain, this.bytes) < this.bytes + plain.length) ftruncateSync(this.fd, this.bytes + plain.length);
    this.readBack(plain);
    this.bytes += plain.length;
  }

  /**
   * Checks the length, sets owner, mode, extended attributes and times, and places the file.
   * Returns its size and the attributes the target could not hold (the record is still restored).
   */
  finish(): { bytes: number; skipped: string[] } {
    const { t, fd } = this;
    if (readSync(fd, Buffer.alloc(1), 0, 1, this.bytes) !== 0) throw new MedvaultError(codes.VERIFY_FAILED, `${t.display}: restored file is longer than in the snapshot`);
    if (ROOT) {
      try {
        fchownSync(fd, t.uid, t.gid);
      } catch {
        // an id this system cannot hold: the file stays ours
      }
    }
    fchmodSync(fd, t.mode);
    closeSync(fd); // durability: one syncfs of the target after all files (Restorer), not an fsync per file
    this.fd = -1;
    const skipped = applyXattrs(t.tmp, t.xattrs, t.display);
    setTimes(t.tmp, BigInt(t.mtime), BigInt(t.mtime)); // to the nanosecond
    place(t.tmp, t.path, t.replace, t.display);
    return { bytes: this.bytes, skipped };
  }

  /** Closes and removes the temp file (a failed file is never left under any name). */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    try {
      sync.unlink(this.t.tmp);
    } catch {
      // placed or gone already
    }
  }

  /** Reads back the chunk just written at the current end (or its holes) and compares it with `want`. */
  private readBack(want: Buffer): void {
    scratch = grown(scratch, want.length);
    const got = scratch.subarray(0, want.length);
    let n = 0;
    for (let r = 1; n < want.length && r > 0; n += r) r = readSync(this.fd, got, n, want.length - n, this.bytes + n);
    if (n !== want.length || !got.equals(want)) throw new MedvaultError(codes.VERIFY_FAILED, `${this.t.display}: restored bytes differ from the snapshot at offset ${this.bytes}`);
  }
}

/**
 * Sets the extended attributes on `path` (never following a symlink). One the target cannot hold
 * (a file system without them, a namespace or size it refuses) is returned as a message.
 */
export function applyXattrs(path: Buffer, xattrs: [string, string][] | undefined, display: string): string[] {
  const skipped: string[] = [];
  for (const [name, value] of xattrs ?? []) {
    try {
      setXattr(path, name, Buffer.from(value, 'base64url'));
    } catch (err) {
      skipped.push(`${display}: extended attribute ${name} not restored: ${(err as Error).message}`);
    }
  }
  return skipped;
}

/** Moves temp file `a` to `b`: replacing it ('overwrite'), or refusing an existing name atomically ('new'). */
export function place(a: Buffer, b: Buffer, replace: 'new' | 'overwrite', display: string): void {
  if (replace === 'overwrite') return sync.rename(a, b);
  if (noReplace) {
    try {
      return sync.renameNoReplace(a, b);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw notOverwritten(display);
      if (code !== 'EINVAL' && code !== 'ENOSYS') throw err;
      noReplace = false; // a file system without it: link + unlink refuses an existing name just as atomically
    }
  }
  try {
    sync.link(a, b);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw notOverwritten(display);
    throw err;
  } finally {
    try {
      sync.unlink(a);
    } catch {
      // gone already
    }
  }
}

/** The bytes of `b` from `at` to the next file-system block boundary (blocks are aligned to the file, not the chunk). */
const blockLen = (b: Buffer, pos: number, at: number) => Math.min(b.length - at, BLOCK - ((pos + at) % BLOCK));
const zeroBlock = (b: Buffer, o: number) => b[o] === 0 && b[o + BLOCK - 1] === 0 && b.subarray(o, o + BLOCK).equals(ZEROS);

/**
 * Writes chunk `b` at file position `pos` of a new file, skipping every block-aligned 4 KiB of
 * zeros (a sparse file's chunk is mostly holes: written whole, a 64 MiB file with 8 KiB of data
 * took a maximum chunk per data block on disk). Returns the end of the last byte written.
 */
function writeSparse(fd: number, b: Buffer, pos: number): number {
  const hole = (o: number) => blockLen(b, pos, o) === BLOCK && zeroBlock(b, o);
  let end = pos;
  for (let o = 0; o < b.length; ) {
    if (hole(o)) {
      o += BLOCK;
      continue;
    }
    let to = o + blockLen(b, pos, o);
    while (to < b.length && !hole(to)) to += blockLen(b, pos, to);
    for (let at = o; at < to; ) at += writeSync(fd, b, at, to - at, pos + at);
    end = pos + to;
    o = to;
  }
  return end;
}
