/**
 * A pool of worker threads for the CPU-heavy work on data: blob ids (HMAC-SHA256)
 * and zstd of new chunks, authenticating blobs and writing whole files for restore, whole packs
 * for check --read-data.
 * Buffers are transferred, not copied. At most MAX_INFLIGHT bytes are handed to the threads at a
 * time: callers wait (backpressure), so memory stays bounded however fast files are read. Threads
 * start on first use (a backup's: after BACKUP_INLINE_BYTES done inline) and never keep the process
 * alive when idle. Results are byte-identical to the main-thread functions (the threads call them).
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { MedvaultError, codes, type ErrorCode } from '@medvault/protocol/core';
import type { BlobEntry, PackParts } from '../repo/pack.js';
import type { FileTarget } from '../restore/file-writer.js';
import { runTask } from './pool-tasks.js';
import { release } from '../platform/fsx.js';

/** A chunk ready to be sealed into a pack: its id, codec and (maybe compressed) bytes. */
export interface EncodedBlob {
  id: string;
  codec: number;
  data: Uint8Array;
  rawLength: number;
}

export interface PackCheck {
  /** The pack's bytes hash to its name. */
  hashOk: boolean;
  /** Why the header failed (then no blob was read). */
  header?: string;
  blobs: number;
  failures: { id: string; message: string }[];
}

/** A chunk of a file to restore, in a pack on a local disk: its catalog entry, the pack's file and key. */
export interface LocalChunk {
  entry: BlobEntry;
  path: string;
  packKey: Uint8Array;
}

/** What a restoreFile answers: the file placed (its bytes, attributes the target refused), or given back (`again`: why) to be restored through the repository. */
export type RestoredFile = { bytes: number; skipped: string[] } | { again: string };

type Req =
  | { op: 'encode'; key: Uint8Array; buf: ArrayBuffer }
  | { op: 'id'; key: Uint8Array; buf: ArrayBuffer }
  | { op: 'pack'; key: Uint8Array; salt: Uint8Array; table: Uint8Array; lengths: number[]; bufs: ArrayBuffer[]; into?: ArrayBuffer }
  | { op: 'open'; key: Uint8Array; packKey: Uint8Array; entry: BlobEntry; buf: ArrayBuffer }
  | { op: 'checkPack'; key: Uint8Array; packRoot: Uint8Array; pack: string; buf: ArrayBuffer }
  | { op: 'restoreFile'; key: Uint8Array; file: FileTarget; chunks: LocalChunk[] };
export type PoolRequest = Req & { seq: number };
/** A thread's answer to one request (pool-worker.ts sends them in arrays). */
type Reply = { seq: number; result?: unknown; error?: { code: ErrorCode; message: string } };

/** Threads: one per core beside the main thread (which chunks, seals and writes); MEDVAULT_POOL_THREADS=N sets it, 0 runs the work inline. */
const THREADS = Math.min(Number(process.env.MEDVAULT_POOL_THREADS ?? Math.max(1, availableParallelism() - 1)) || 0, 8);
/**
 * check --read-data's packs and restore's whole files get a thread per core: the main thread only
 * reads packs or hands out files, so one more thread is worth its ~45 MiB there (bench data set:
 * check 5.0 -> 4.3 s); backup keeps THREADS.
 */
const WIDE = THREADS === 0 || process.env.MEDVAULT_POOL_THREADS ? THREADS : Math.max(THREADS, availableParallelism());
/** Bytes handed to the threads and not yet answered, per thread running (each caller waits beyond this): each can hold a whole pack. */
const INFLIGHT_PER_THREAD = 16 * 1024 * 1024;
/**
 * Each thread's young generation (V8 makes it 3 semi-spaces: 1 MiB each here). A thread's own
 * objects are few and small (its data are ArrayBuffers, outside V8's heap; a larger object goes to
 * the large-object space), and V8's default lets it grow to 48 MiB: check --read-data peaked 15-20
 * MiB lower with its two threads held to this, at the same CPU (bench data set, 3 alternating runs).
 */
const YOUNG_GENERATION_MB = 3;

/**
 * Restore's per-chunk work (open, id) on blobs up to this size runs on the calling thread: for a
 * small file's chunk the two thread hops cost more than the AES-GCM and MAC themselves. Backup's
 * encode always goes to a thread (its main thread is the busier one).
 */
const INLINE_MAX = 64 * 1024;
/**
 * Backup's work (encode, pack) runs on the calling thread until this many bytes went through it,
 * and after that until a thread has loaded (threads start then, and nothing waits for them): the
 * new data of a small incremental costs less inline than a thread's start (~0.1-0.2 s of CPU) and
 * a round trip per chunk. 1% incremental of the bench data set (~40 MB new): main thread 0.76-0.86
 * s inline against 0.80-0.91 s with the thread, all threads 1.22-1.37 against 1.38-1.57 s.
 */
export const BACKUP_INLINE_BYTES = 64 * 1024 * 1024;
/** A pack's blobs from this size go to the sealing thread as their own buffers; smaller ones are copied together (pack()). */
const OWN_SEGMENT_MIN = 64 * 1024;

/** `b` itself when it alone spans its ArrayBuffer (so it can be transferred), else a copy that does. */
export function owned(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer)) return b;
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

interface Slot {
  worker: Worker;
  busy: number;
  /** The thread has loaded its modules (its first message). */
  ready: boolean;
}

export class CryptoPool {
  private slots: Slot[] = [];
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; slot: Slot; bytes: number }>();
  private seq = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  /** A written pack's buffer, to seal the next pack into (recycle). */
  private spare: ArrayBuffer | undefined;
  /** Bytes of backup work done so far (BACKUP_INLINE_BYTES). */
  private backupBytes = 0;

  /** `inlineBytes`: see BACKUP_INLINE_BYTES (tests pass 0 to send everything to the threads). */
  constructor(private readonly inlineBytes = BACKUP_INLINE_BYTES) {}

  /** Threads started (loaded or not). */
  get threads(): number {
    return this.slots.length;
  }

  /** Starts threads until `n` run. */
  private start(n: number): void {
    // tests run the TypeScript sources: the thread registers tsx first, then loads its own source
    const ts = import.meta.url.endsWith('.ts');
    const url = new URL(ts ? './pool-worker.ts' : './pool-worker.js', import.meta.url);
    const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
    while (this.slots.length < n) {
      const resourceLimits = { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB };
      const worker = ts ? new Worker(boot, { eval: true, resourceLimits }) : new Worker(url, { resourceLimits });
      const slot: Slot = { worker, busy: 0, ready: false };
      worker.on('message', (m: Reply[] | { ready: true }) => (Array.isArray(m) ? m.forEach((r) => this.settle(r)) : (slot.ready = true)));
      worker.on('error', (err) => this.crashed(slot, err));
      worker.on('exit', (code) => this.crashed(slot, new Error(`crypto thread exited with code ${code}`)));
      worker.unref();
      this.slots.push(slot);
    }
  }

  private settle(m: Reply): void {
    const c = this.calls.get(m.seq);
    if (!c) return;
    this.calls.delete(m.seq);
    this.done(c.slot, c.bytes);
    if (m.error) c.reject(new MedvaultError(m.error.code ?? codes.STORAGE_FAILED, m.error.message));
    else c.resolve(m.result);
  }

  private done(slot: Slot, bytes: number): void {
    if (--slot.busy === 0) slot.worker.unref();
    this.inflight -= bytes;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** A thread died (out of memory, a bug): its calls fail (retryable: the work itself was not refused), the pool starts fresh threads next time. */
  private crashed(slot: Slot, err: Error): void {
    if (!this.slots.includes(slot)) return;
    this.slots = this.slots.filter((s) => s !== slot);
    for (const s of this.slots) void s.worker.terminate();
    this.slots = [];
    for (const [seq, c] of this.calls) {
      this.calls.delete(seq);
      this.done(c.slot, c.bytes);
      c.reject(new MedvaultError(codes.STORAGE_FAILED, `crypto thread failed: ${err.message}`, { cause: err, retryable: true }));
    }
  }

  private async call<T>(req: Req, bytes: number): Promise<T> {
    if (THREADS === 0 || (bytes <= INLINE_MAX && (req.op === 'open' || req.op === 'id'))) return runTask({ ...req, seq: 0 }).result as T;
    if ((req.op === 'encode' || req.op === 'pack') && !this.slots.some((s) => s.ready)) {
      this.backupBytes += bytes;
      if (this.backupBytes > this.inlineBytes && this.slots.length < THREADS) this.start(THREADS);
      if (this.backupBytes <= this.inlineBytes || !this.slots.some((s) => s.ready)) return runTask({ ...req, seq: 0 }).result as T;
    }
    const want = req.op === 'checkPack' || req.op === 'restoreFile' ? WIDE : THREADS;
    if (this.slots.length < want) this.start(want);
    while (this.inflight > 0 && this.inflight + bytes > INFLIGHT_PER_THREAD * this.slots.length) await new Promise<void>((r) => this.waiters.push(r));
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = ++this.seq;
    this.inflight += bytes;
    if (slot.busy++ === 0) slot.worker.ref(); // a call in flight keeps the process alive
    return new Promise<T>((resolve, reject) => {
      this.calls.set(seq, { resolve: resolve as (v: unknown) => void, reject, slot, bytes });
      slot.worker.postMessage({ ...req, seq }, req.op === 'pack' ? [...req.bufs, ...(req.into ? [req.into] : [])] : req.op === 'restoreFile' ? [] : [req.buf]);
    });
  }

  /** id = HMAC(key, plain) and the blob's codec and bytes (compressed when that helps). `plain` is consumed. */
  encode(key: Uint8Array, plain: Buffer): Promise<EncodedBlob> {
    const b = owned(plain);
    return this.call<EncodedBlob>({ op: 'encode', key, buf: b.buffer as ArrayBuffer }, b.length).then((r) => ({ ...r, data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) }));
  }

  /** The blob id of `plain` (which is consumed). */
  id(key: Uint8Array, plain: Buffer): Promise<string> {
    const b = owned(plain);
    return this.call<string>({ op: 'id', key, buf: b.buffer as ArrayBuffer }, b.length);
  }

  /**
   * Seals a pack (buildPack) and hashes it: its bytes and name. The blobs go over in segments: each
   * blob of 64 KiB or more as it is, each run of smaller ones copied into one buffer (a pack of tiny
   * files holds ~40,000 blobs, and that many transferred buffers cost more than the copy: 200,000
   * tiny files took 15.1 s and +140 MiB of heap; copying every blob cost the bench data set ~50 MiB).
   * The blobs are consumed: those transferred are gone, the copied ones are freed at once (left to
   * the collector, a pack's worth of them outlived two scavenges: backup's peak RSS 307 -> 244 MiB).
   */
  pack(p: PackParts): Promise<{ hash: string; bytes: Buffer }> {
    const lengths = p.blobs.map((b) => b.length);
    const segs: Buffer[] = [];
    let run: Buffer[] = [];
    const flush = () => {
      if (run.length > 0) segs.push(owned(Buffer.concat(run)));
      for (const b of run) release(b);
      run = [];
    };
    for (const b of p.blobs) {
      const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      if (x.length < OWN_SEGMENT_MIN) run.push(x);
      else {
        flush();
        segs.push(owned(x));
      }
    }
    flush();
    const into = this.spare;
    this.spare = undefined;
    const req = { op: 'pack' as const, key: p.key, salt: p.salt, table: p.table, lengths, bufs: segs.map((b) => b.buffer as ArrayBuffer), ...(into ? { into } : {}) };
    return this.call<{ hash: string; buf: ArrayBuffer; offset: number; length: number }>(req, segs.reduce((n, b) => n + b.length, 0)).then((r) => ({ hash: r.hash, bytes: Buffer.from(r.buf, r.offset, r.length) }));
  }

  /**
   * Takes back a pack from pack() once it is written, for the next pack to be sealed into (its
   * bytes are overwritten then: the caller MUST NOT use `bytes` again). One is kept, any other
   * freed at once. A new 8-16 MiB buffer per pack cost its pages' first-touch faults, the kernel
   * zeroing each page, and the unmapping: bench data set, initial backup, ~6.5% of both cores'
   * time was that zeroing under the sealing (perf). With packs at a 4096-byte boundary (written
   * in place by direct.c, no bounce copy), 3 alternating pairs: 12.2 -> 10.6 s user+sys, 8.3 ->
   * 7.3 s wall, peak RSS alike (171-179 MiB).
   */
  recycle(bytes: Buffer): void {
    if (bytes.buffer instanceof SharedArrayBuffer || bytes.buffer.byteLength === 0) return; // freed (detached) already: nothing to keep
    if (this.spare === undefined) this.spare = bytes.buffer;
    else release(new Uint8Array(bytes.buffer));
  }

  /** Frees the kept pack buffer (a writer is done: an idle daemon does not hold it). */
  dropSpare(): void {
    if (this.spare !== undefined) release(new Uint8Array(this.spare));
    this.spare = undefined;
  }

  /** Decrypts, decodes and checks one blob against its id; MV_ERR_DATA_CORRUPT when any fails. `sealed` is consumed. */
  open(key: Uint8Array, pk: Uint8Array, entry: BlobEntry, sealed: Buffer): Promise<Buffer> {
    const b = owned(sealed);
    return this.call<Uint8Array>({ op: 'open', key, packKey: pk, entry, buf: b.buffer as ArrayBuffer }, b.length + entry.rawLength).then((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength));
  }

  /** Checks a whole pack: its hash, header, and every blob (AES-GCM, then id). `bytes` is consumed. */
  checkPack(key: Uint8Array, packRoot: Uint8Array, pack: string, bytes: Buffer): Promise<PackCheck> {
    const b = owned(bytes);
    return this.call<PackCheck>({ op: 'checkPack', key, packRoot, pack, buf: b.buffer as ArrayBuffer }, b.length);
  }

  /**
   * Restores one whole file from local packs in a thread (pool-tasks.ts restoreFile): read, open,
   * write, verify, place. Memory is one chunk at a time, whatever the file's size.
   */
  restoreFile(key: Uint8Array, file: FileTarget, chunks: LocalChunk[]): Promise<RestoredFile> {
    return this.call({ op: 'restoreFile', key, file, chunks }, 0);
  }
}

let shared: CryptoPool | undefined;
/** The process's pool. */
export function cryptoPool(): CryptoPool {
  return (shared ??= new CryptoPool());
}
