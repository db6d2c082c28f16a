/**
 * The work the crypto pool (pool.ts) does, as one function of a request, so it runs the same in a
 * pool thread (pool-worker.ts) and inline (MEDVAULT_POOL_THREADS=0). It calls the main-thread
 * functions, so every byte it produces is what the main thread would have produced. The buffers a
 * request hands over are freed as soon as the task is done with them (release: a thread's own
 * collector runs too seldom for them).
 */
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol/core'; // not the barrel: a crypto pool thread loads this file (see core)
import { blobId } from './keys.js';
import { encodeBlob } from '../repo/codec.js';
import { readPackHeader, packKey, packSalt, openBlobWithKey, buildPack, type BlobEntry } from '../repo/pack.js';
import { owned, type PoolRequest } from './pool.js';
import { release } from '../platform/fsx.js';

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
      const bytes = buildPack({ key: m.key, salt: m.salt, table: m.table, blobs });
      for (const b of m.bufs) release(new Uint8Array(b));
      return { result: { hash: sha256Hex(bytes), buf: bytes.buffer }, transfer: [bytes.buffer as ArrayBuffer] };
    }
    case 'open': {
      const plain = owned(openBlobWithKey(m.packKey, m.entry, new Uint8Array(m.buf)));
      release(new Uint8Array(m.buf));
      if (blobId(m.key, plain) !== m.entry.id) throw new MedvaultError(codes.DATA_CORRUPT, `blob ${m.entry.id} in pack ${m.entry.pack} does not match its id`);
      return { result: plain, transfer: [plain.buffer as ArrayBuffer] };
    }
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
          const plain = openBlobWithKey(key, e, b.subarray(e.offset, e.offset + e.length));
          const ok = blobId(m.key, plain) === e.id;
          release(plain);
          if (!ok) throw new Error('does not match its id');
        } catch (err) {
          failures.push({ id: e.id, message: (err as Error).message });
        }
      }
      release(b);
      return { result: { hashOk, blobs: entries.length, failures }, transfer: [] };
    }
  }
}
