/**
 * catalog/: the agent's LevelDB cache of where each blob lives (blob id → pack, offset, length).
 * A cache only: Repository rebuilds it from the repository's index files whenever their set differs.
 *
 * Keys: `b:<blob id>` → [type, pack, n, offset, length, rawLength, codec]; `p:<pack>` → [index, size];
 * `i:<index>` → '' (the index files already merged).
 */
import { Level } from 'level';
import { blobTypes, type BlobEntry, type BlobType } from '../repo/pack.js';
import type { IndexedPack } from '../repo/index-file.js';

interface Kv {
  get(key: string): Promise<string | undefined>;
  put(entries: [string, string][]): Promise<void>;
  keys(prefix: string): AsyncIterable<string>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

class MemKv implements Kv {
  private readonly m = new Map<string, string>();
  async get(key: string) {
    return this.m.get(key);
  }
  async put(entries: [string, string][]) {
    for (const [k, v] of entries) this.m.set(k, v);
  }
  async *keys(prefix: string) {
    for (const k of [...this.m.keys()]) if (k.startsWith(prefix)) yield k;
  }
  async clear() {
    this.m.clear();
  }
  async close() {}
}

class LevelKv implements Kv {
  constructor(private readonly db: Level<string, string>) {}
  get(key: string) {
    return this.db.get(key);
  }
  put(entries: [string, string][]) {
    return this.db.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })));
  }
  async *keys(prefix: string) {
    yield* this.db.keys({ gte: prefix, lt: prefix + '\xff' });
  }
  clear() {
    return this.db.clear();
  }
  close() {
    return this.db.close();
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
      const db = new Level<string, string>(dir, { valueEncoding: 'utf8' });
      try {
        await db.open();
        return new Catalog(new LevelKv(db), true);
      } catch {
        // locked or unreadable: the cache is optional, fall back to memory
      }
    }
    return new Catalog(new MemKv(), false);
  }

  async blob(id: string): Promise<BlobEntry | undefined> {
    const v = await this.kv.get(`b:${id}`);
    if (v === undefined) return undefined;
    const [t, pack, n, offset, length, rawLength, codec] = JSON.parse(v) as [number, string, number, number, number, number, number];
    return { type: blobTypes[t] as BlobType, id, pack, n, offset, length, rawLength, codec };
  }

  async pack(pack: string): Promise<{ index: string; size: number } | undefined> {
    const v = await this.kv.get(`p:${pack}`);
    if (v === undefined) return undefined;
    const [index, size] = JSON.parse(v) as [string, number];
    return { index, size };
  }

  async indexes(): Promise<Set<string>> {
    const s = new Set<string>();
    for await (const k of this.kv.keys('i:')) s.add(k.slice(2));
    return s;
  }

  async packs(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.kv.keys('p:')) out.push(k.slice(2));
    return out;
  }

  /** Merges one index file; the index name is recorded last, so a crash mid-way only repeats work. */
  async addIndex(name: string, packs: IndexedPack[]): Promise<void> {
    const entries: [string, string][] = [];
    for (const p of packs) {
      entries.push([`p:${p.pack}`, JSON.stringify([name, p.size])]);
      for (const b of p.blobs) entries.push([`b:${b.id}`, JSON.stringify([blobTypes.indexOf(b.type), b.pack, b.n, b.offset, b.length, b.rawLength, b.codec])]);
    }
    await this.kv.put(entries);
    await this.kv.put([[`i:${name}`, '']]);
  }

  clear(): Promise<void> {
    return this.kv.clear();
  }
  close(): Promise<void> {
    return this.kv.close();
  }
}
