/**
 * The work the crypto pool (pool.ts) does, as one function of a request, so it runs the same in a
 * pool thread (pool-worker.ts) and inline (MEDVAULT_POOL_THREADS=0). It calls the main-thread
 * functions, so every byte it produces is what the main thread would have produced. The buffers a
 * request hands over are freed as soon as the task is done with them (release: a thread's own
 * collector runs too seldom for them).
 */
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol/core';
import { blobId } from './keys.js';
import { encodeBlob } from '../repo/codec.js';
import { readPackHeader, packKey, packSalt, openBlobWithKey, buildPack, type BlobEntry } from '../repo/pack.js';
import { owned, type PoolRequest, type LocalChunk, type RestoredFile } from './pool.js';
import { FileWriter, type FileTarget } from '../restore/file-writer.js';
import { openSync, readSync, closeSync, constants } from 'node:fs';
import { release, grown } from '../platform/fsx.js';

/** Runs one request; returns its result and the buffers to transfer back. */
export function runTask(m: PoolRequest): { result: unknown; transfer: ArrayBuffer[] } {
  switch (m.op) {
    case 'encode': {
      const plain = Buffer.from(m.buf);
      const id = blobId(m.key, plain);
      const { codec, data } = encodeBlob(plain);
      const out = owned(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const rawLength = plain.length;
      if (out.buffer !== m.buf) release(plain); // stored as is: `out` is `plain`, sent back
      return { result: { id, codec, data: out, rawLength }, transfer: [out.buffer as ArrayBuffer] };
    }
    case 'id':
      return { result: blobId(m.key, new Uint8Array(m.buf)), transfer: [] };
    case 'pack': {
      // the blobs, in order, from the segments they came in (pool.ts pack())
      let seg = 0;
      let o = 0;
      const blobs = m.lengths.map((n) => {
        if (o === m.bufs[seg]!.byteLength) [seg, o] = [seg + 1, 0];
        return new Uint8Array(m.bufs[seg]!, (o += n) - n, n);
      });
      const bytes = buildPack({ key: m.key, salt: m.salt, table: m.table, blobs }, m.into);
      for (const b of m.bufs) release(new Uint8Array(b));
      return { result: { hash: sha256Hex(bytes), buf: bytes.buffer, offset: bytes.byteOffset, length: bytes.length }, transfer: [bytes.buffer as ArrayBuffer] };
    }
    case 'open': {
      const plain = owned(openChecked(m.key, m.packKey, m.entry, new Uint8Array(m.buf)));
      release(new Uint8Array(m.buf));
      return { result: plain, transfer: [plain.buffer as ArrayBuffer] };
    }
    case 'restoreFile':
      return { result: restoreFile(m.key, { ...m.file, tmp: asBuffer(m.file.tmp), path: asBuffer(m.file.path) }, m.chunks), transfer: [] };
    case 'checkPack': {
      const b = Buffer.from(m.buf);
      const hashOk = sha256Hex(b) === m.pack;
      let entries: BlobEntry[];
      try {
        entries = readPackHeader(m.packRoot, b, m.pack);
      } catch (err) {
        release(b);
        return { result: { hashOk, header: (err as Error).message, blobs: 0, failures: [] }, transfer: [] };
      }
      const key = packKey(m.packRoot, packSalt(b, m.pack));
      const failures: { id: string; message: string }[] = [];
      for (const e of entries) {
        try {
          // in place: the pack was hashed above and is not used after its check
          const plain = openBlobWithKey(key, e, b.subarray(e.offset, e.offset + e.length), true);
          const matches = blobId(m.key, plain) === e.id;
          if (plain.buffer !== b.buffer) release(plain); // decompressed: freed now, not when this thread next collects (a pack of small blobs is thousands)
          if (!matches) throw new Error('does not match its id');
        } catch (err) {
          failures.push({ id: e.id, message: (err as Error).message });
        }
      }
      release(b);
      return { result: { hashOk, blobs: entries.length, failures }, transfer: [] };
    }
  }
}

/** A blob's plaintext, authenticated by AES-GCM and then by its id; MV_ERR_DATA_CORRUPT otherwise. */
function openChecked(key: Uint8Array, pk: Uint8Array, e: BlobEntry, sealed: Uint8Array, inPlace = false): Buffer {
  const plain = openBlobWithKey(pk, e, sealed, inPlace);
  if (blobId(key, plain) !== e.id) throw new MedvaultError(codes.DATA_CORRUPT, `blob ${e.id} in pack ${e.pack} does not match its id`);
  return plain;
}

/** A Buffer over a Uint8Array that came through postMessage (paths are bytes). */
const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * Writes, verifies and places one whole file from local packs (see restore/file-writer.ts). A chunk
 * that cannot be read or authenticated here writes nothing more and answers `again`: the restorer
 * then restores the file through the repository, which rebuilds a stale catalog, repairs from
 * another copy, or names the damaged blob and pack. Failures of the target throw.
 */
function restoreFile(key: Uint8Array, file: FileTarget, chunks: LocalChunk[]): RestoredFile {
  const w = FileWriter.create(file);
  try {
    for (const c of chunks) {
      let plain: Buffer;
      try {
        plain = openChecked(key, c.packKey, c.entry, readRange(c.path, c.entry.offset, c.entry.length), true);
      } catch (err) {
        w.abort();
        return { again: (err as Error).message };
      }
      w.write(plain);
      if (plain.buffer !== sealedBuf.buffer) release(plain); // decompressed into a buffer of its own
    }
    return w.finish();
  } catch (err) {
    w.abort();
    throw err;
  }
}

/**
 * Open packs of this thread, for restoreFile's ranged reads (a pack of small files serves
 * thousands of files): a few kept, all closed once the thread has been idle for a second, so a
 * pack that prune deletes does not stay allocated. A pack replaced meanwhile (repair) may still
 * be read from its old file: its blobs are authenticated either way, and a damaged one is read
 * again through the repository (`again`).
 */
const packFds = new Map<string, number>();
let closeTimer: NodeJS.Timeout | undefined;
const PACK_FDS = 16;

/** Where restoreFile reads each chunk (grown to the largest) and opens it in place: one buffer per thread, not one per chunk. */
let sealedBuf = Buffer.alloc(0);

/** Bytes [offset, offset + length) of a pack, in this thread's sealedBuf (valid until the next call). */
function readRange(path: string, offset: number, length: number): Buffer {
  let fd = packFds.get(path);
  if (fd === undefined) {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); // a named pipe in a pack's place must not block (dir-store.ts READ)
    packFds.set(path, fd);
    if (packFds.size > PACK_FDS) {
      const [oldest, old] = packFds.entries().next().value as [string, number];
      packFds.delete(oldest);
      closeSync(old);
    }
  }
  clearTimeout(closeTimer);
  closeTimer = setTimeout(closePacks, 1000).unref();
  sealedBuf = grown(sealedBuf, length);
  const b = sealedBuf.subarray(0, length);
  for (let n = 0; n < length; ) {
    const r = readSync(fd, b, n, length - n, offset + n);
    if (r === 0) throw new Error(`${path}: ends before byte ${offset + length}`);
    n += r;
  }
  return b;
}

function closePacks(): void {
  for (const fd of packFds.values()) closeSync(fd);
  packFds.clear();
}
