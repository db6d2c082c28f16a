/**
 * @medvault/fsx: Linux system calls Node's fs lacks, on raw byte paths (Buffer) or strings. Every
 * call acts on the path itself, never following a final symlink. Errors are Error objects with
 * `code` (errno name, e.g. 'ENOTSUP'), `errno` and `syscall`, like Node's own.
 */
type Path = string | Buffer;
declare const fsx: {
  /** Every extended attribute of `path` (llistxattr + lgetxattr); [] where the file system has none. */
  getXattrs(path: Path): [name: string, value: Buffer][];
  /** Sets one extended attribute (lsetxattr), creating or replacing it. */
  setXattr(path: Path, name: string, value: Buffer): void;
  /** Sets access and modification times to the nanosecond (utimensat with AT_SYMLINK_NOFOLLOW). */
  setTimes(path: Path, atimeNs: bigint, mtimeNs: bigint): void;
  /** Renames `from` to `to` unless `to` exists (renameat2 RENAME_NOREPLACE): EEXIST then; EINVAL where the file system cannot. */
  renameNoReplace(from: Path, to: Path): void;
  /**
   * syncfs(2) of the file system `fd` is on, in the thread pool: rejects (EIO, ENOSPC, ...) when
   * any writeback error happened on it since `fd` was opened, the kernel's own flushes included.
   */
  syncfs(fd: number): Promise<void>;
  /** Creates a FIFO, character or block device node (mknod); `mode` includes the file type bits. */
  mknod(path: Path, mode: number, dev: bigint): void;
  /**
   * Sends `message` as one AF_UNIX datagram to `socketPath` (systemd's $NOTIFY_SOCKET: a path, or
   * `@name` for the abstract namespace). Node cannot send unix datagrams; see sd_notify(3).
   * Never blocks: when the receiver's queue is full it throws EAGAIN.
   */
  notify(socketPath: string, message: string): void;
  /** Test support: binds an AF_UNIX datagram socket at `path` (or `@name`) and returns its fd. */
  bindDatagram(path: string): number;
  /** Test support: the next datagram on `fd` as UTF-8 text, or null after `timeoutMs` (blocks). */
  recvDatagram(fd: number, timeoutMs: number): string | null;
  /** Test support: closes `fd`. */
  closeFd(fd: number): void;
  /**
   * FastCDC's gear hash over buf[pos..] from h = state[0] (src/gear.c; backup/chunker.ts holds the
   * algorithm): cuts after the first byte where (h & maskS) == 0 before endS or (h & maskL) == 0
   * before endL. Returns the index after that byte (state[1] = 1) or endL (state[1] = 0); leaves h in state[0].
   */
  /**
   * AES-256-GCM (OpenSSL, as node links it) of `plain` under a 32-byte key and 12-byte nonce, with
   * optional additional data: writes ciphertext then the 16-byte tag at out[offset..offset + plain.length + 16) (src/seal.c).
   */
  sealInto(key: Uint8Array, iv: Uint8Array, plain: Uint8Array, out: Uint8Array, offset: number, aad?: Uint8Array): void;
  /**
   * Decrypts AES-256-GCM ciphertext || tag in place (plaintext at sealed[0..length - 16)) and checks
   * the tag (src/seal.c): true when it authenticates; on false the bytes MUST NOT be used.
   */
  openInPlace(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): boolean;
  /**
   * One folder's entries with their lstat, in the thread pool (src/scan.c): `names` holds each raw
   * name followed by a NUL, in readdir order ("." and ".." left out); `nums` 6 numbers per entry
   * (errno of its lstat or 0, st_mode, uid, gid, size, nlink); `text` one line per entry,
   * "mtimeNs ctimeNs ino dev rdev" in decimal (as lstat with bigint gives them). Opens the folder
   * with O_NOFOLLOW: rejects (ENOTDIR for a symlink, ENOENT, EACCES, ...) when it cannot be listed.
   */
  scanDir(path: Path): Promise<{ names: Buffer; nums: Float64Array; text: string }>;
  /**
   * Frees an ArrayBuffer's memory now (detaches it: each view of it has length 0 after) rather than
   * at its thread's next garbage collection. Throws when it cannot be detached (a SharedArrayBuffer).
   * One that a writeDirect is still writing is left as it is (to the collector).
   */
  release(buffer: ArrayBuffer): void;
  /**
   * Writes `buffer` at `position` (a multiple of 4096) of a file opened with O_DIRECT, in the thread
   * pool (src/direct.c): no page-cache copy. A `buffer` at a 4096-byte boundary is written where it
   * is, any other through an aligned bounce buffer. A last partial block is
   * written padded with zeros and the file truncated to position + length. Rejects like Node's fs
   * (EINVAL where the file system refuses O_DIRECT). `release` leaves the buffer alone until then.
   */
  writeDirect(fd: number, buffer: Uint8Array, position: number): Promise<void>;
  /** Bytes from the start of `buffer`'s memory to its first 4096-byte boundary (0 to 4095). */
  alignGap(buffer: ArrayBuffer): number;
  gearScan(gear: Uint32Array, buf: Uint8Array, pos: number, endS: number, endL: number, maskS: number, maskL: number, state: Int32Array): number;
};
export = fsx;
