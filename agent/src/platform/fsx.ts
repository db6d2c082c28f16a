/**
 * platform/: the Linux calls Node's fs lacks, from the project's own small addon (@medvault/fsx,
 * compiled at install): extended attributes, nanosecond timestamps, mknod for FIFOs and devices,
 * unix datagrams for systemd's notification socket (see systemd.ts), and FastCDC's inner loop
 * (gearScan, for backup/chunker.ts), AES-256-GCM into a given buffer and in place (sealInto,
 * openInPlace, for crypto/aead.ts), a folder's entries with their lstat in one call off the
 * main thread (scanDir, for the backup walk), writes that bypass the page cache (writeDirect, for
 * the packs of store/dir-store.ts), and freeing a buffer's memory at once (release,
 * for crypto/pool.ts).
 */
import fsx from '@medvault/fsx';

export const { getXattrs, setXattr, setTimes, mknod, renameNoReplace, syncfs, notify, bindDatagram, recvDatagram, closeFd, gearScan, sealInto, openInPlace, scanDir, writeDirect } = fsx;

/**
 * Frees `b`'s memory now when `b` alone spans its ArrayBuffer (else leaves it to the garbage
 * collector: a slice of Node's buffer pool, say). The caller MUST own `b` and never read it, or
 * any view of it, again. Buffers are mostly garbage on a thread that allocates little on its own
 * heap, so its collector may not run for many packs: check --read-data's threads held ~35 MiB of
 * read packs and decrypted blobs that way, backup's main thread up to ~9 written packs.
 */
export function release(b: Uint8Array): void {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength > 0 && !(b.buffer instanceof SharedArrayBuffer)) fsx.release(b.buffer as ArrayBuffer);
}

/**
 * O_DIRECT's unit of alignment (src/direct.c): writeDirect's position is a multiple of it, and a
 * buffer whose address is one is written where it is, without a copy.
 */
export const DIRECT_ALIGN = 4096;

/**
 * `size` bytes at a DIRECT_ALIGN boundary, so writeDirect writes them where they are: in `into`
 * when it has room (a buffer this gave before, see CryptoPool.recycle), else in a new buffer
 * (`into` freed).
 */
export function aligned(size: number, into?: ArrayBuffer): Buffer<ArrayBuffer> {
  if (into !== undefined) {
    const gap = fsx.alignGap(into);
    if (into.byteLength - gap >= size) return Buffer.from(into, gap, size);
    release(new Uint8Array(into));
  }
  const b = Buffer.allocUnsafeSlow(size + DIRECT_ALIGN - 1);
  return Buffer.from(b.buffer, fsx.alignGap(b.buffer), size);
}

/**
 * A thread's reused buffer `b` when it holds `size` bytes, else a new one of that size, `b` freed
 * (release): left to a pool thread's collector, the buffers it outgrew (restore's reads and
 * read-backs, grown to the largest chunk) stayed allocated.
 */
export function grown(b: Buffer<ArrayBuffer>, size: number): Buffer<ArrayBuffer> {
  if (b.length >= size) return b;
  release(b);
  return Buffer.allocUnsafeSlow(size);
}
