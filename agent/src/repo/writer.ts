/**
 * RepoWriter: the only way data enters a repository. Holds the writer lock; writes packs, then the
 * index files naming them, then (saveSnapshot) the snapshot, so a crash leaves at worst
 * unreferenced packs and never a snapshot pointing at missing data. A blob already indexed or
 * pending in this session is not stored again (dedup).
 */
import { MedvaultError, codes, sha256Hex, type ObjectKind } from '@medvault/protocol';
import { hashedAs, type Store } from '../store/store.js';
import { acquireLock, type WriterLock } from './lock.js';
import { PackBuilder, readPackHeader, type BlobType } from './pack.js';
import { faultPoint } from '../store/faults.js';
import { encodeIndex, type IndexedPack } from './index-file.js';
import { encodeSnapshot, snapshotSchema, type Snapshot } from './snapshot-file.js';
import type { Repository } from './repository.js';
import { encodeBlob } from './codec.js';
import { BlobIdSet } from '../catalog/blob-set.js';
import { cryptoPool, type EncodedBlob } from '../crypto/pool.js';

export interface WrittenObject {
  kind: ObjectKind;
  hash: string;
  size: number;
}

/**
 * A pack is closed once it holds this many bytes (so packs are 8-16 MiB with 8 MiB chunks). The
 * crash harness lowers it (MEDVAULT_PACK_TARGET) to get many packs out of little data.
 */
export const PACK_TARGET = Number(process.env.MEDVAULT_PACK_TARGET) || 8 * 1024 * 1024;
/** An index file is written after this many packs, and at every flush (MEDVAULT_PACKS_PER_INDEX for tests). */
const PACKS_PER_INDEX = Number(process.env.MEDVAULT_PACKS_PER_INDEX) || 16;
/** ... or after this many blobs (tiny files: 40,000 fit one pack), so the ids held until indexed stay few. */
const BLOBS_PER_INDEX = 32_768;
/**
 * Packs closed and not yet written (being sealed in the pool, or written) before blobs wait to be
 * added. Waiting for the previous write only held up the caller that closed a pack, and a backup
 * saves chunks of many files at once: the bench's initial backup had ~8 packs of 8.5 MiB in flight.
 */
const MAX_PACKS_PENDING = 2;
/**
 * Dedup lookups answered by the catalog (a LevelDB get each) before the in-memory id set is loaded:
 * loading it reads every blob id of the repository (bench data set: ~28,000, tens of ms, growing
 * with the repository), more than the few hundred new chunks of a small incremental cost to look up.
 */
const LOOKUPS_BEFORE_SET = 2048;

export class RepoWriter {
  /** Every object this writer stored, in write order (for replication). */
  readonly written: WrittenObject[] = [];
  private readonly pending = new Set<string>();
  private known: BlobIdSet | undefined;
  private knownGeneration = -1;
  private knownLoading: Promise<void> | undefined;
  private lookups = 0;
  private builder: PackBuilder;
  private unindexed: IndexedPack[] = [];
  private inflight: Promise<void> = Promise.resolve();
  private packsPending = 0;
  private packWritten: (() => void)[] = [];
  private indexChain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private released = false;

  private constructor(
    readonly repo: Repository,
    private readonly store: Store,
    private readonly lock: WriterLock,
  ) {
    this.builder = new PackBuilder(repo.keys.pack);
  }

  /**
   * MV_ERR_NOT_FOUND when the repository's config is not there (its disk gone since it was opened).
   * Takes the writer lock (MV_ERR_REPO_LOCKED at once when held), sweeps what interrupted writes
   * left in tmp/, brings the catalog up to date, and adopts packs that a crash left without an
   * index file (their headers are authenticated and indexed), so the next run reuses them.
   */
  static async start(repo: Repository, store: Store): Promise<RepoWriter> {
    // The daemon keeps its repositories open for good: a disk unmounted since (rotated out) left an
    // empty mount point, and the writes below recreated the repository's folders there, on the
    // system disk, each backup 'committed' and its disk 'ok' while nothing reached the disk.
    if (!(await store.has('config', 'config'))) throw new MedvaultError(codes.NOT_FOUND, `${repo.label}: the repository is not there any more (its config is missing): is the disk unmounted or unplugged?`);
    const lock = await acquireLock(store, repo.label, { now: repo.now });
    const w = new RepoWriter(repo, store, lock);
    try {
      await store.sweep();
      await repo.syncCatalog();
      await w.adoptOrphans();
    } catch (err) {
      await lock.release().catch(() => undefined); // the disk's own error is the one to report
      throw err;
    }
    return w;
  }

  /** Packs on disk that no index names: the work of a run that crashed before its index was written. */
  private async adoptOrphans(): Promise<void> {
    const known = new Set(await this.repo.catalog.packs());
    for await (const e of this.store.list('pack')) {
      if (known.has(e.name)) continue;
      const bytes = await this.store.get('pack', e.name);
      if (!bytes) continue;
      try {
        if (sha256Hex(bytes) !== e.name) throw new Error('hash mismatch');
        this.unindexed.push({ pack: e.name, size: bytes.length, blobs: readPackHeader(this.repo.keys.pack, bytes, e.name) });
      } catch {
        continue; // damaged: check reports it, prune removes it
      }
      if (this.unindexed.length >= PACKS_PER_INDEX) await this.writeIndex();
    }
    await this.writeIndex();
  }

  /** The lock this writer holds; prune deletes under it. */
  get holdsLock(): boolean {
    return !this.released && !this.lock.lost;
  }

  /** Pending in this session or indexed; from the catalog for the first LOOKUPS_BEFORE_SET ids, then from an id set loaded from it. */
  async hasBlob(id: string): Promise<boolean> {
    if (this.pending.has(id)) return true;
    if (this.known === undefined && this.lookups++ < LOOKUPS_BEFORE_SET) return (await this.repo.catalog.blob(id)) !== undefined || this.pending.has(id);
    if (this.known === undefined || this.knownGeneration !== this.repo.catalog.generation) await this.loadKnown();
    return this.known!.has(id);
  }

  /**
   * hasBlob answered without waiting: undefined while the id set is not loaded or is out of date
   * (then ask hasBlob). The backup walk asks it for each chunk of every unchanged file.
   */
  hasBlobNow(id: string): boolean | undefined {
    if (this.pending.has(id)) return true;
    if (this.known === undefined || this.knownGeneration !== this.repo.catalog.generation) return undefined;
    return this.known.has(id);
  }

  /** (Re)loads the id set; again whenever the catalog was rebuilt (it may have lost entries). */
  private async loadKnown(): Promise<void> {
    this.knownLoading ??= (async () => {
      const generation = this.repo.catalog.generation;
      const s = new BlobIdSet();
      for await (const ids of this.repo.catalog.blobIds()) for (const id of ids) s.add(id);
      this.known = s;
      this.knownGeneration = generation;
    })().finally(() => (this.knownLoading = undefined));
    await this.knownLoading;
  }

  /** Stores a blob unless a blob with its id exists; `added` tells whether bytes were added. `plain` is consumed (the pack it goes into frees it). */
  async saveBlob(type: BlobType, plain: Uint8Array, id = this.repo.blobId(plain)): Promise<{ id: string; added: boolean }> {
    return this.saveEncoded(type, id, () => ({ id, rawLength: plain.length, ...encodeBlob(plain) }));
  }

  /** saveBlob for a chunk whose id and encoding were computed already (by the crypto pool). */
  saveChunk(b: EncodedBlob): Promise<{ id: string; added: boolean }> {
    return this.saveEncoded('data', b.id, () => b);
  }

  private async saveEncoded(type: BlobType, id: string, encoded: () => EncodedBlob): Promise<{ id: string; added: boolean }> {
    this.check();
    if (await this.hasBlob(id) || this.pending.has(id)) return { id, added: false }; // re-check: concurrent callers
    while (this.packsPending >= MAX_PACKS_PENDING) await new Promise<void>((r) => this.packWritten.push(r));
    if (this.pending.has(id)) return { id, added: false };
    this.check();
    this.pending.add(id);
    this.builder.addEncoded(type, encoded());
    if (this.builder.size >= PACK_TARGET) await this.closePack();
    return { id, added: true };
  }

  /** Stores a blob even when the catalog has it elsewhere (prune moving it out of a pack to be deleted). */
  async copyBlob(type: BlobType, id: string, plain: Uint8Array): Promise<void> {
    this.check();
    if (this.pending.has(id)) return;
    this.pending.add(id);
    this.builder.add(type, id, plain);
    if (this.builder.size >= PACK_TARGET) await this.closePack();
  }

  private check(): void {
    if (this.released) throw new MedvaultError(codes.STORAGE_FAILED, `${this.repo.label}: writer already released`);
    if (this.failure !== undefined) throw this.failure;
    if (this.lock.lost) throw new MedvaultError(codes.REPO_LOCKED, `${this.repo.label}: the writer lock was taken over by another process`);
  }

  /**
   * Closes the current pack and queues its write behind the previous one (a chain, so no write is
   * ever lost to a concurrent caller) and waits for the previous write; other callers' blobs wait
   * while MAX_PACKS_PENDING packs are unwritten (saveEncoded), so about two packs are in memory
   * beyond the one being filled.
   */
  private async closePack(): Promise<void> {
    if (this.builder.count === 0) return;
    const { parts, entries } = this.builder.parts();
    this.builder = new PackBuilder(this.repo.keys.pack);
    const packing = cryptoPool().pack(parts); // sealed and hashed off the main thread, while it fills the next pack
    packing.catch(() => undefined);
    const prev = this.inflight;
    this.packsPending++;
    this.inflight = prev.then(async () => {
      try {
        if (this.failure !== undefined) return;
        const { hash, bytes } = await packing;
        hashedAs(bytes, hash);
        await this.store.put('pack', hash, bytes);
        this.written.push({ kind: 'pack', hash, size: bytes.length });
        this.unindexed.push({ pack: hash, size: bytes.length, blobs: entries(hash) });
        cryptoPool().recycle(bytes); // written: the next pack is sealed into it (else it waited for a full collection: pack buffers outlive two scavenges while they are written)
      } catch (err) {
        this.failure ??= err;
      } finally {
        this.packsPending--;
        for (const w of this.packWritten.splice(0)) w();
      }
    });
    await prev;
    this.check();
    if (this.unindexed.length >= PACKS_PER_INDEX || this.unindexed.reduce((n, p) => n + p.blobs.length, 0) >= BLOBS_PER_INDEX) await this.writeIndex();
  }

  /**
   * Writes an index file for every pack written and not yet indexed. Index writes are serialised,
   * so when a call resolves every index write before it is durable too (flush relies on this).
   */
  private writeIndex(): Promise<void> {
    const run = this.indexChain.then(() => this.writeIndexNow());
    this.indexChain = run.catch(() => undefined);
    return run;
  }

  private async writeIndexNow(): Promise<void> {
    await this.inflight;
    this.check();
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed;
    this.unindexed = [];
    const bytes = encodeIndex(this.repo.keys.meta, packs);
    const hash = sha256Hex(bytes);
    try {
      await this.store.put('index', hash, bytes);
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
    this.written.push({ kind: 'index', hash, size: bytes.length });
    faultPoint('catalog.add', hash);
    await this.repo.catalog.addIndex(hash, packs);
    for (const p of packs) for (const b of p.blobs) this.known?.add(b.id);
    for (const p of packs) for (const b of p.blobs) this.pending.delete(b.id);
  }

  /** Makes every blob saved so far durable and indexed. */
  async flush(): Promise<void> {
    this.check();
    await this.closePack();
    await this.writeIndex();
  }

  /** Flushes, then commits the snapshot; returns its hash. */
  async saveSnapshot(s: Snapshot): Promise<string> {
    await this.flush();
    const bytes = encodeSnapshot(this.repo.keys.meta, snapshotSchema.parse(s));
    const hash = sha256Hex(bytes);
    try {
      await this.store.put('snapshot', hash, bytes);
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
    this.written.push({ kind: 'snapshot', hash, size: bytes.length });
    return hash;
  }

  /**
   * Releases the lock; unflushed blobs are dropped (packs already written stay, unreferenced).
   * After a write failed, a lock that cannot be deleted is left (stale; a later writer takes it
   * over) and release resolves: the write's error is the one the caller reports. A disk that
   * filled up or went read-only usually refuses the delete too, and its EIO/EROFS had replaced
   * the ENOSPC (message and disk alert naming locks/writer, not the pack).
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.inflight.catch(() => undefined);
    cryptoPool().dropSpare();
    await this.lock.release().catch((err) => {
      if (this.failure === undefined) throw err;
    });
  }
}
