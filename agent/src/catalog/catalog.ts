/**
 * catalog/: the agent's LevelDB cache of where each blob lives (blob id → pack, offset, length).
 * A cache only: Repository rebuilds it from the repository's index files whenever their set differs.
 *
 * Keys: `b:<blob id>` → [type, pack, n, offset, length, rawLength, codec]; `p:<pack>` → [index, size];
 * `i:<index>` → '' (the index files already merged).
 */
import { rm } from 'node:fs/promises';
import { Level } from 'level';
import { blobTypes, type BlobEntry, type BlobType } from '../repo/pack.js';
import type { IndexedPack } from '../repo/index-file.js';

interface Kv {
  get(key: string): Promise<string | undefined>;
  /** Writes every entry in one atomic batch; `entries` is read once, lazily. */
  put(entries: Iterable<[string, string]>): Promise<void>;
  /** The keys starting with `prefix`, in order, a batch at a time. */
  keys(prefix: string): AsyncIterable<string[]>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

class MemKv implements Kv {
  private readonly m = new Map<string, string>();
  async get(key: string) {
    return this.m.get(key);
  }
  async put(entries: Iterable<[string, string]>) {
    for (const [k, v] of entries) this.m.set(k, v);
  }
  async *keys(prefix: string) {
    yield [...this.m.keys()].filter((k) => k.startsWith(prefix));
  }
  async clear() {
    this.m.clear();
  }
  async close() {}
}

class LevelKv implements Kv {
  constructor(private readonly db: Level<string, string>) {}
  /** On the calling thread: a cached LevelDB read costs a few µs, the thread-pool round trip of get() several times that (a restore asks once per chunk). */
  async get(key: string) {
    return this.db.getSync(key);
  }
  /** A chained batch: each entry goes to LevelDB's native batch as it comes, so an index of 60,000 blobs builds no array of operations. */
  async put(entries: Iterable<[string, string]>) {
    const batch = this.db.batch();
    try {
      for (const [k, v] of entries) batch.put(k, v);
    } catch (err) {
      await batch.close();
      throw err;
    }
    await batch.write();
  }
  /** In batches of 1,000 (nextv): a promise per key made loading 24,000 blob ids take 2-3 times as long. */
  async *keys(prefix: string) {
    const it = this.db.keys({ gte: prefix, lt: prefix + '\xff' });
    try {
      for (let batch = await it.nextv(1000); batch.length > 0; batch = await it.nextv(1000)) yield batch;
    } finally {
      await it.close();
    }
  }
  clear() {
    return this.db.clear();
  }
  close() {
    return this.db.close();
  }
}

/**
 * The LevelDB until it turns out damaged in use (LEVEL_CORRUPTION: a bad block that open() did not
 * read): this run then goes on in memory, starting empty (the repository refills it from the index
 * files, as for any missing entry), and the folder is removed, so the next open builds it afresh.
 * A damaged cache must cost a rebuild, not the restore (it failed the whole run).
 */
class FallbackKv implements Kv {
  private kv: Kv;
  constructor(
    level: LevelKv,
    private readonly dir: string,
  ) {
    this.kv = level;
  }
  /** Runs `f` on the current store, and once more in memory when the LevelDB it ran on was found damaged (or closed as such meanwhile). */
  private async use<T>(f: (kv: Kv) => Promise<T>): Promise<T> {
    const kv = this.kv;
    try {
      return await f(kv);
    } catch (err) {
      await this.damaged(kv, err);
      return f(this.kv);
    }
  }
  /** Rethrows `err` unless it shows `kv` damaged; then (once) swaps in memory for it and removes its folder. */
  private async damaged(kv: Kv, err: unknown): Promise<void> {
    if (kv !== this.kv) return;
    if (kv instanceof MemKv || (err as { code?: string } | undefined)?.code !== 'LEVEL_CORRUPTION') throw err;
    this.kv = new MemKv();
    await kv.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
  get(key: string) {
    return this.use((kv) => kv.get(key));
  }
  put(entries: Iterable<[string, string]>) {
    return this.use((kv) => kv.put(entries));
  }
  /** Streams; a damage found part way ends the listing (what it did not list is missing from a cache, no more). */
  async *keys(prefix: string) {
    const kv = this.kv;
    try {
      yield* kv.keys(prefix);
    } catch (err) {
      await this.damaged(kv, err);
    }
  }
  clear() {
    return this.use((kv) => kv.clear());
  }
  close() {
    return this.kv.close();
  }
}

const STAMP_KEY = 'v:';
const STAMP = 'medvault catalog 1';

function isLocked(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) if (e.code === 'LEVEL_LOCKED') return true;
  return false;
}

/** A value that does not parse means the cache is damaged: callers treat that like a missing entry. */
function parseValue<T>(v: string): T | undefined {
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

export class Catalog {
  private constructor(private readonly kv: Kv, readonly persistent: boolean) {}

  /**
   * Opens the cache in `dir` (created if missing), or an in-memory one when `dir` is undefined or
   * the LevelDB is held by another process (a restore while the daemon backs up).
   */
  static async open(dir?: string): Promise<Catalog> {
    if (dir !== undefined) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const db = new Level<string, string>(dir, { valueEncoding: 'utf8' });
        try {
          await db.open();
          const c = new Catalog(new FallbackKv(new LevelKv(db), dir), true);
          if ((await c.kv.get(STAMP_KEY)) !== STAMP) {
            await c.kv.clear(); // older layout or a damaged stamp: start over
            await c.kv.put([[STAMP_KEY, STAMP]]);
          }
          return c;
        } catch (err) {
          await db.close().catch(() => undefined);
          if (isLocked(err) || attempt === 1) break; // held by another process: use memory
          await rm(dir, { recursive: true, force: true }); // corrupt: the cache is rebuilt from the repository
        }
      }
    }
    return new Catalog(new MemKv(), false);
  }

  async blob(id: string): Promise<BlobEntry | undefined> {
    const v = await this.kv.get(`b:${id}`);
    if (v === undefined) return undefined;
    const p = parseValue<[number, string, number, number, number, number, number]>(v);
    if (!Array.isArray(p) || p.length !== 7) return undefined;
    const [t, pack, n, offset, length, rawLength, codec] = p;
    return { type: blobTypes[t] as BlobType, id, pack, n, offset, length, rawLength, codec };
  }

  async pack(pack: string): Promise<{ index: string; size: number } | undefined> {
    const v = await this.kv.get(`p:${pack}`);
    if (v === undefined) return undefined;
    const p = parseValue<[string, number]>(v);
    if (!Array.isArray(p)) return undefined;
    const [index, size] = p;
    return { index, size };
  }

  async indexes(): Promise<Set<string>> {
    const s = new Set<string>();
    for await (const batch of this.kv.keys('i:')) for (const k of batch) s.add(k.slice(2));
    return s;
  }

  /** Every blob id in the cache, a batch at a time. */
  async *blobIds(): AsyncIterable<string[]> {
    for await (const batch of this.kv.keys('b:')) yield batch.map((k) => k.slice(2));
  }

  /** Counts clear()s, so a holder of derived state (the writer's id set) knows to rebuild it. */
  get generation(): number {
    return this.cleared;
  }
  private cleared = 0;

  async packs(): Promise<string[]> {
    const out: string[] = [];
    for await (const batch of this.kv.keys('p:')) for (const k of batch) out.push(k.slice(2));
    return out;
  }

  /** Merges one index file; the index name is recorded last, so a crash mid-way only repeats work. */
  async addIndex(name: string, packs: IndexedPack[]): Promise<void> {
    function* entries(): Generator<[string, string]> {
      for (const p of packs) {
        yield [`p:${p.pack}`, JSON.stringify([name, p.size])];
        for (const b of p.blobs) yield [`b:${b.id}`, JSON.stringify([blobTypes.indexOf(b.type), b.pack, b.n, b.offset, b.length, b.rawLength, b.codec])];
      }
    }
    await this.kv.put(entries());
    await this.kv.put([[`i:${name}`, '']]);
  }

  async clear(): Promise<void> {
    this.cleared++;
    await this.kv.clear();
    await this.kv.put([[STAMP_KEY, STAMP]]);
  }
  close(): Promise<void> {
    return this.kv.close();
  }
}
