/**
 * The Pruner: forgets snapshots the policy does not keep, and deletes data no remaining snapshot
 * needs. Runs under the writer lock. Crash-safe at every step because nothing is deleted before
 * what replaces it is durable, and nothing a remaining snapshot needs is ever deleted:
 *
 * 1. Forget: delete the snapshot files the policy drops (each delete is atomic).
 * 2. Mark: walk every remaining snapshot; any snapshot or tree that cannot be read aborts the
 *    prune before anything else is deleted (its needs are unknown).
 * 3. Plan per indexed pack: unused (no needed blob) → delete; mostly unused (> 20% of its bytes)
 *    → repack its needed blobs; otherwise keep as is. A needed blob that fails authentication
 *    keeps its pack as is (never repacked from bad bytes, never deleted).
 * 4. Repack: copy needed blobs into new packs; flush writes them and their index (durable).
 * 5. Write new index files for every kept pack; only then delete the old index files.
 * 6. Delete the packs no index names any more. A crash here leaves unindexed packs, which the
 *    next writer adopts and the next prune deletes again.
 */
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol';
import type { Repository } from '../repo/repository.js';
import type { Store } from '../store/store.js';
import { decodeIndex, encodeIndex, type IndexedPack } from '../repo/index-file.js';
import { applyPolicy, type Decision, type RetentionPolicy } from './policy.js';

export interface PruneResult {
  decisions: Decision[];
  forgotten: string[];
  /** Only with prune: */
  packsDeleted: number;
  packsRepacked: number;
  bytesFreed: number;
  indexesRewritten: number;
  dryRun: boolean;
}

const REPACK_UNUSED = 0.2;
const PACKS_PER_INDEX = 256;

export class Pruner {
  constructor(private readonly repo: Repository) {}

  /** Applies `policy` (forget) and, with `prune`, deletes unneeded data; `dryRun` only reports. */
  async run(o: { policy: RetentionPolicy; store?: string; prune: boolean; dryRun: boolean }): Promise<PruneResult> {
    const w = await this.repo.writer();
    const store = this.repo.store as Store;
    try {
      const snaps = await this.repo.snapshots();
      const scoped = snaps.filter((s) => o.store === undefined || s.store === o.store);
      const decisions = applyPolicy(scoped, o.policy);
      const forget = decisions.filter((d) => !d.keep).map((d) => d.hash);
      const result: PruneResult = { decisions, forgotten: forget, packsDeleted: 0, packsRepacked: 0, bytesFreed: 0, indexesRewritten: 0, dryRun: o.dryRun };
      if (o.dryRun) return result;
      for (const h of forget) await store.delete('snapshot', h);
      if (!o.prune) return result;

      const adopted = new Set(w.written.filter((x) => x.kind === 'index').map((x) => x.hash));
      // 2. mark
      const remaining = new Set(snaps.map((s) => s.hash).filter((h) => !forget.includes(h)));
      for await (const e of store.list('snapshot')) remaining.add(e.name);
      const used = new Set<string>();
      for (const h of remaining) {
        try {
          await this.repo.walkSnapshot(h, (id) => void used.add(id));
        } catch (cause) {
          throw new MedvaultError(codes.DATA_CORRUPT, `${this.repo.label}: prune refused: snapshot ${h} cannot be read in full, so what it needs is unknown (${(cause as Error).message})`, { cause });
        }
      }
      // 3. plan, from the index files themselves
      const indexes = new Map<string, IndexedPack[]>();
      for await (const e of store.list('index')) {
        const b = await store.get('index', e.name);
        if (!b || sha256Hex(b) !== e.name) continue; // damaged: left alone (its packs were adopted by the writer)
        try {
          indexes.set(e.name, decodeIndex(this.repo.keys.meta, b, e.name));
        } catch {
          continue;
        }
      }
      const packs = new Map<string, IndexedPack>();
      for (const list of indexes.values()) for (const p of list) packs.set(p.pack, p);
      const placed = new Set<string>(); // needed blobs that already have a kept home
      const keep: IndexedPack[] = [];
      const drop: IndexedPack[] = [];
      const repack: IndexedPack[] = [];
      for (const p of [...packs.values()].sort((a, b) => a.pack.localeCompare(b.pack))) {
        const needed = p.blobs.filter((b) => used.has(b.id) && !placed.has(b.id));
        const neededBytes = needed.reduce((n, b) => n + b.length, 0);
        const total = p.blobs.reduce((n, b) => n + b.length, 0) || 1;
        if (needed.length === 0) drop.push(p);
        else if (1 - neededBytes / total > REPACK_UNUSED) repack.push(p);
        else {
          keep.push(p);
          for (const b of needed) placed.add(b.id);
        }
      }
      // 4. repack
      for (const p of repack) {
        const blobs: { type: 'data' | 'tree'; id: string; plain: Buffer }[] = [];
        try {
          for (const b of p.blobs) if (used.has(b.id) && !placed.has(b.id)) blobs.push({ type: b.type, id: b.id, plain: await this.repo.loadBlobFrom(b) });
        } catch {
          keep.push(p); // a needed blob does not authenticate: keep the pack as it is
          for (const b of p.blobs) placed.add(b.id);
          continue;
        }
        for (const b of blobs) {
          await w.copyBlob(b.type, b.id, b.plain);
          placed.add(b.id);
        }
        drop.push(p);
        result.packsRepacked++;
      }
      await w.flush();
      // index files written by this prune (repacked packs); not the one the writer wrote at start to
      // adopt orphan packs: that one names packs this prune may delete, so it is replaced too
      const fresh = new Set(w.written.filter((x) => x.kind === 'index' && !adopted.has(x.hash)).map((x) => x.hash));
      // 5. new index files for the kept packs, then the old ones go
      for (let i = 0; i < keep.length; i += PACKS_PER_INDEX) {
        const bytes = encodeIndex(this.repo.keys.meta, keep.slice(i, i + PACKS_PER_INDEX));
        const hash = sha256Hex(bytes);
        await store.put('index', hash, bytes);
        w.written.push({ kind: 'index', hash, size: bytes.length });
        fresh.add(hash);
        result.indexesRewritten++;
      }
      for (const name of indexes.keys()) if (!fresh.has(name)) await store.delete('index', name);
      // 6. packs no index names
      const named = new Set(keep.map((p) => p.pack));
      for (const x of w.written) if (x.kind === 'pack') named.add(x.hash);
      for (const p of drop) {
        if (named.has(p.pack)) continue;
        await store.delete('pack', p.pack);
        result.packsDeleted++;
        result.bytesFreed += p.size;
      }
      // packs that no readable index names and that adoption refused (damaged) stay for check to report
      await this.repo.rebuildCatalog();
      return result;
    } finally {
      await w.release();
    }
  }
}
