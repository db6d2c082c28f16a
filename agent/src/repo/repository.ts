/**
 * repo/: the repository format on top of a dumb Store: config, key files, packs, index files,
 * snapshots, trees. Repository reads; RepoWriter (writer.ts) adds packs, indexes and snapshots.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MedvaultError, codes, sha256Hex, type ObjectKind } from '@medvault/protocol';
import type { ReadableStore, Store, StoreKind } from '../store/store.js';
import { Catalog } from '../catalog/catalog.js';
import { deriveKeys, newMasterKey, blobId, type RepoKeys } from '../crypto/keys.js';
import { encodeConfig, decodeConfig, defaultChunker, FORMAT_VERSION, type RepoConfig } from './config-file.js';
import { encodeKeyFile, decodeKeyFile, type Unlock } from './key-file.js';
import { decodeIndex } from './index-file.js';
import { decodeSnapshot, type Snapshot } from './snapshot-file.js';
import { decodeTree, type TreeNode } from './tree.js';
import { openBlobWithKey, packKey, packSalt, PACK_PREFIX, type BlobEntry, type BlobType } from './pack.js';
import { RepoWriter } from './writer.js';

export type { Unlock } from './key-file.js';

export interface SnapshotInfo {
  hash: string;
  time: number;
  store: string;
  job: Snapshot['job'];
  partial: boolean;
  summary: Snapshot['summary'];
  parent?: string;
  tags: string[];
}

export interface ObjectRef {
  kind: ObjectKind;
  hash: string;
}

export interface OpenOptions {
  /** Folder for LevelDB catalogs (one subfolder per repository id); in memory when omitted. */
  cacheDir?: string;
  /** Names the repository in messages, e.g. the disk path. */
  label?: string;
  now?: () => number;
}

const storeKind = (k: ObjectKind): StoreKind => k;
/** Snapshot files read at once when listing them (snapshots()). */
const SNAPSHOTS_AHEAD = 16;

export class Repository {
  private readonly packKeys = new Map<string, Promise<Buffer>>();
  private readonly snapshotCache = new Map<string, Snapshot>();
  /** The one catalog rebuild a failed read starts (shared by the reads failing meanwhile), and whether it has ended. */
  private catalogRebuild?: Promise<void>;
  private catalogRebuilt = false;
  /** Index files that failed to read at the last sync (name → why); their packs are re-adopted by the next writer. */
  readonly damagedIndexes = new Map<string, string>();

  private constructor(
    readonly store: ReadableStore,
    readonly config: RepoConfig,
    readonly keys: RepoKeys,
    readonly catalog: Catalog,
    readonly label: string,
    readonly now: () => number,
    /** The folder of this machine's caches of the repository (OpenOptions.cacheDir); undefined: none. */
    readonly cacheDir?: string,
  ) {}

  /** The repository id: 32 hex characters. */
  get id(): string {
    return this.config.id;
  }

  /**
   * Creates a repository in `store` unless one exists (idempotent); returns its id. Writes the key
   * file before `config`, so a crash leaves either no repository or a complete one.
   */
  static async create(store: Store, o: { localKey: Uint8Array; recoveryPublicKey: string; now?: () => number }): Promise<string> {
    const existing = await store.get('config', 'config');
    if (existing) return decodeConfig(existing).id;
    const now = (o.now ?? Date.now)();
    const config: RepoConfig = { version: FORMAT_VERSION, id: randomBytes(16).toString('hex'), created: now, chunker: defaultChunker };
    const keyFile = await encodeKeyFile(config.id, newMasterKey(), o.localKey, o.recoveryPublicKey, now);
    await store.put('key', sha256Hex(keyFile), keyFile);
    await store.put('config', 'config', encodeConfig(config));
    return config.id;
  }

  /** Opens a repository with the local key or the recovery private key; MV_ERR_KEY_INVALID if neither fits. */
  static async open(store: ReadableStore, unlock: Unlock, o: OpenOptions = {}): Promise<Repository> {
    const label = o.label ?? 'repository';
    (store as { closeHandles?: () => void }).closeHandles?.();
    const raw = await store.get('config', 'config');
    if (!raw) throw new MedvaultError(codes.NOT_FOUND, `${label}: no repository (config missing)`);
    const config = decodeConfig(raw, `${label}/config`);
    let master: Buffer | undefined;
    let lastErr: unknown;
    const damagedKeys: string[] = [];
    for await (const k of store.list('key')) {
      const b = await store.get('key', k.name);
      if (!b || sha256Hex(b) !== k.name) {
        damagedKeys.push(k.name);
        continue;
      }
      try {
        master = await decodeKeyFile(b, config.id, unlock, `${label}/keys/${k.name}`);
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!master) {
      if (damagedKeys.length > 0 && lastErr === undefined) throw new MedvaultError(codes.DATA_CORRUPT, `${label}: key file ${damagedKeys.join(', ')} is damaged (does not match its hash); open with another copy of the disk or restore the key file from off site`);
      if (lastErr instanceof MedvaultError && lastErr.code === codes.KEY_INVALID) throw lastErr;
      throw new MedvaultError(codes.KEY_INVALID, `${label}: no key file opens repository ${config.id}`, { cause: lastErr });
    }
    const catalog = await Catalog.open(o.cacheDir === undefined ? undefined : join(o.cacheDir, config.id));
    const repo = new Repository(store, config, deriveKeys(master), catalog, label, o.now ?? Date.now, o.cacheDir);
    await repo.syncCatalog();
    return repo;
  }

  /**
   * Brings the catalog in line with the index files: merges new ones, and rebuilds from scratch
   * when the catalog knows an index file the repository no longer has.
   */
  async syncCatalog(): Promise<void> {
    const names = new Set<string>();
    for await (const e of this.store.list('index')) names.add(e.name);
    let known = await this.catalog.indexes();
    if ([...known].some((n) => !names.has(n))) {
      await this.catalog.clear();
      known = new Set();
    }
    this.damagedIndexes.clear();
    for (const n of names) {
      if (known.has(n)) continue;
      try {
        const b = await this.store.get('index', n);
        if (!b || sha256Hex(b) !== n) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: index ${n} does not match its hash`);
        await this.catalog.addIndex(n, decodeIndex(this.keys.meta, b, n));
      } catch (err) {
        if (!(err instanceof MedvaultError) || (err.code !== codes.DATA_CORRUPT && err.code !== codes.FORMAT_UNKNOWN)) throw err;
        this.damagedIndexes.set(n, err.message); // one bad index must not make the repository unreadable
      }
    }
  }

  /** Throws the catalog away and rebuilds it from the index files alone; packs may have been replaced, so open handles go too. */
  async rebuildCatalog(): Promise<void> {
    await this.catalog.clear();
    this.packKeys.clear();
    (this.store as { closeHandles?: () => void }).closeHandles?.();
    await this.syncCatalog();
  }

  /** Takes the writer lock (MV_ERR_REPO_LOCKED when held) and returns a writer. */
  async writer(): Promise<RepoWriter> {
    if (!('put' in this.store)) throw new MedvaultError(codes.STORAGE_FAILED, `${this.label}: read-only store`);
    return RepoWriter.start(this, this.store as Store);
  }

  blobId(plain: Uint8Array): string {
    return blobId(this.keys.chunkId, plain);
  }

  blobEntry(id: string): Promise<BlobEntry | undefined> {
    return this.catalog.blob(id);
  }

  /**
   * A blob's plaintext, authenticated twice (AES-GCM, then its id MAC). MV_ERR_DATA_CORRUPT, naming
   * the blob and pack, when it is missing or fails either check; never returns unauthenticated bytes.
   */
  async loadBlob(id: string, type?: BlobType): Promise<Buffer> {
    const rebuilt = this.catalogRebuilt; // then the entry came from the rebuilt catalog: the disk's word
    try {
      return await this.loadBlobOnce(id, type);
    } catch (err) {
      // the catalog is only a cache: a wrong or missing entry may be the cache's fault, not the disk's.
      // Every read that failed before the rebuild ended (reads in parallel saw the stale or the
      // half-cleared catalog) waits for that one rebuild and tries once more.
      if (rebuilt || !(err instanceof MedvaultError) || err.code !== codes.DATA_CORRUPT) throw err;
      await (this.catalogRebuild ??= this.rebuildCatalog().finally(() => (this.catalogRebuilt = true)));
      return this.loadBlobOnce(id, type);
    }
  }

  private async loadBlobOnce(id: string, type?: BlobType): Promise<Buffer> {
    const e = await this.catalog.blob(id);
    if (!e) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: blob ${id} is not in any index`);
    if (type && e.type !== type) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: blob ${id} is a ${e.type}, expected ${type}`);
    return this.loadBlobFrom(e);
  }

  /** One blob from a given pack location, authenticated like loadBlob (prune copies from exact packs). */
  async loadBlobFrom(e: BlobEntry): Promise<Buffer> {
    const id = e.id;
    const key = await this.packKeyOf(e.pack);
    const sealed = await this.store.get('pack', e.pack, { offset: e.offset, length: e.length });
    if (!sealed) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: pack ${e.pack} is missing`);
    const plain = openBlobWithKey(key, e, sealed);
    if (this.blobId(plain) !== id) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: blob ${id} in pack ${e.pack} does not match its id`);
    return plain;
  }

  /**
   * A pack's key, derived from the salt at its start (read once: reads in parallel share the
   * promise; bounded, since keys are cheap to derive again). MV_ERR_DATA_CORRUPT when it is missing.
   */
  packKeyOf(pack: string): Promise<Buffer> {
    let key = this.packKeys.get(pack);
    if (!key) {
      const made = this.store.get('pack', pack, { offset: 0, length: PACK_PREFIX }).then((prefix) => {
        if (!prefix) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: pack ${pack} is missing`);
        return packKey(this.keys.pack, packSalt(prefix, pack));
      });
      made.catch(() => this.packKeys.get(pack) === made && this.packKeys.delete(pack));
      if (this.packKeys.size > 4096) this.packKeys.clear();
      this.packKeys.set(pack, (key = made));
    }
    return key;
  }

  async loadTree(id: string): Promise<TreeNode[]> {
    return decodeTree(await this.loadBlob(id, 'tree'), id);
  }

  /** A snapshot file, checked against its hash and authenticated. */
  async loadSnapshot(hash: string): Promise<Snapshot> {
    const cached = this.snapshotCache.get(hash);
    if (cached) return cached;
    const b = await this.readObject('snapshot', hash);
    const s = decodeSnapshot(this.keys.meta, b, hash);
    this.snapshotCache.set(hash, s);
    return s;
  }

  /**
   * Every readable snapshot, oldest first; damaged ones are left to the Checker to report. Every
   * backup lists them all to find its parent, so they are read SNAPSHOTS_AHEAD at a time: one
   * after the other, 66 snapshots took a backup ~130 ms (each file's open, read and close are
   * round trips to the thread pool).
   */
  async snapshots(): Promise<SnapshotInfo[]> {
    const names: string[] = [];
    for await (const e of this.store.list('snapshot')) names.push(e.name);
    const out: SnapshotInfo[] = [];
    const info = async (hash: string): Promise<void> => {
      try {
        const s = await this.loadSnapshot(hash);
        out.push({ hash, time: s.time, store: s.store, job: s.job, partial: s.partial, summary: s.summary, tags: s.tags, ...(s.parent ? { parent: s.parent } : {}) });
      } catch {
        // damaged: not listed
      }
    };
    for (let i = 0; i < names.length; i += SNAPSHOTS_AHEAD) await Promise.all(names.slice(i, i + SNAPSHOTS_AHEAD).map(info));
    return out.sort((a, b) => a.time - b.time || a.hash.localeCompare(b.hash));
  }

  /** Resolves 'latest' (optionally of one store), a full hash or a unique prefix of at least 6 hex. */
  async resolveSnapshot(ref: string, store?: string): Promise<SnapshotInfo> {
    const all = (await this.snapshots()).filter((s) => store === undefined || s.store === store);
    const found = ref === 'latest' ? all.slice(-1) : /^[0-9a-f]{6,64}$/.test(ref) ? all.filter((s) => s.hash.startsWith(ref)) : [];
    if (found.length > 1) throw new MedvaultError(codes.CONFIG_INVALID, `${this.label}: snapshot prefix ${ref} is ambiguous`);
    if (!found[0] && ref !== 'latest') {
      for await (const e of this.store.list('snapshot')) if (e.name.startsWith(ref)) await this.loadSnapshot(e.name); // damaged: throws MV_ERR_DATA_CORRUPT naming it
    }
    if (!found[0]) throw new MedvaultError(codes.NOT_FOUND, `${this.label}: no snapshot ${ref}${store ? ` of store ${store}` : ''}`);
    return found[0];
  }

  /** Objects of one replicated kind; for `config` the hash is SHA-256 of the config bytes. */
  async *listObjects(kind: ObjectKind): AsyncIterable<{ hash: string; size: number }> {
    if (kind === 'config') {
      const b = await this.store.get('config', 'config');
      if (b) yield { hash: sha256Hex(b), size: b.length };
      return;
    }
    for await (const e of this.store.list(storeKind(kind))) yield { hash: e.name, size: e.size };
  }

  /** An object's bytes, verified to hash to `hash`: MV_ERR_NOT_FOUND or MV_ERR_DATA_CORRUPT otherwise. */
  async readObject(kind: ObjectKind, hash: string): Promise<Buffer> {
    const b = kind === 'config' ? await this.store.get('config', 'config') : await this.store.get(storeKind(kind), hash);
    if (!b) throw new MedvaultError(codes.NOT_FOUND, `${this.label}: ${kind} ${hash} does not exist`);
    if (sha256Hex(b) !== hash) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: ${kind} ${hash} does not match its hash`);
    return b;
  }

  /**
   * Bytes `offset` … `offset + length` of an object (fewer at its end), not verified: the caller
   * hashes the whole as it streams (the replicator). MV_ERR_NOT_FOUND when it does not exist.
   */
  async readObjectRange(kind: ObjectKind, hash: string, offset: number, length: number): Promise<Buffer> {
    const range = { offset, length };
    const b = kind === 'config' ? await this.store.get('config', 'config', range) : await this.store.get(storeKind(kind), hash, range);
    if (!b) throw new MedvaultError(codes.NOT_FOUND, `${this.label}: ${kind} ${hash} does not exist`);
    return b;
  }

  /**
   * Calls `visit` for every tree blob id and every data blob id a snapshot references (each tree
   * once), depth first; `onTree` receives each tree's nodes with its path.
   */
  async walkSnapshot(hash: string, visit: (id: string, type: BlobType) => void | Promise<void>): Promise<void> {
    const s = await this.loadSnapshot(hash);
    const seen = new Set<string>();
    const walk = async (tree: string): Promise<void> => {
      if (seen.has(tree)) return;
      seen.add(tree);
      await visit(tree, 'tree');
      for (const n of await this.loadTree(tree)) {
        for (const c of n.content ?? []) await visit(c, 'data');
        if (n.subtree) await walk(n.subtree);
      }
    };
    await walk(s.tree);
  }

  /** Everything a snapshot needs to be restored elsewhere: config, key files, itself, its index files and packs. */
  async snapshotObjects(hash: string): Promise<ObjectRef[]> {
    const packs = new Set<string>();
    await this.walkSnapshot(hash, async (id) => {
      const e = await this.catalog.blob(id);
      if (!e) throw new MedvaultError(codes.DATA_CORRUPT, `${this.label}: snapshot ${hash} needs blob ${id}, which is in no index`);
      packs.add(e.pack);
    });
    const indexes = new Set<string>();
    for (const p of packs) {
      const i = await this.catalog.pack(p);
      if (i) indexes.add(i.index);
    }
    const out: ObjectRef[] = [];
    for await (const c of this.listObjects('config')) out.push({ kind: 'config', hash: c.hash });
    for await (const k of this.listObjects('key')) out.push({ kind: 'key', hash: k.hash });
    out.push({ kind: 'snapshot', hash });
    for (const i of [...indexes].sort()) out.push({ kind: 'index', hash: i });
    for (const p of [...packs].sort()) out.push({ kind: 'pack', hash: p });
    return out;
  }

  async close(): Promise<void> {
    (this.store as { closeHandles?: () => void }).closeHandles?.();
    await this.catalog.close();
  }
}
