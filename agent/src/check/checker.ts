/**
 * check/: the Checker proves a repository is whole, trusting nothing but the keys.
 *
 * 1. Read every index file (hash = name, authenticates, parses) → which blobs live in which pack.
 * 2. Every indexed pack must exist with the indexed size.
 * 3. With readData: read every pack (or a random subset: readDataSubset), check its SHA-256 name,
 *    its header, and authenticate every blob (AES-GCM, then the id MAC); a blob that fails is damaged.
 *    The crypto pool's threads authenticate packs while the next ones are read (READ_AHEAD).
 *    Key files must match their hash.
 * 4. Every snapshot must open; walk its trees: every tree and chunk must be indexed and not damaged.
 * Each damaged object is named, with every snapshot and file path it affects.
 */
import { randomInt } from 'node:crypto';
import { sha256Hex } from '@medvault/protocol';
import type { Repository } from '../repo/repository.js';
import { decodeIndex } from '../repo/index-file.js';
import type { BlobEntry } from '../repo/pack.js';
import { cryptoPool } from '../crypto/pool.js';
import { decodeSnapshot } from '../repo/snapshot-file.js';
import { decodeTree } from '../repo/tree.js';

export interface CheckProblem {
  kind: 'config' | 'key' | 'pack' | 'index' | 'snapshot' | 'tree' | 'blob';
  name: string;
  problem: string;
}

export interface CheckResult {
  ok: boolean;
  snapshots: number;
  packs: number;
  indexes: number;
  /** Blobs authenticated (readData only). */
  blobsRead: number;
  /** Packs read in full (readData). */
  packsRead: number;
  /** Packs that no index names (left by a crash; adopted by the next backup, or removed by prune). */
  unindexed: number;
  damaged: CheckProblem[];
  /** Files and folders that cannot be restored intact, per snapshot. */
  affected: { snapshot: string; path: string; problem: string }[];
}

/** Packs read while earlier ones are authenticated (each up to ~16 MiB in memory). */
const READ_AHEAD = 2;

export class Checker {
  constructor(private readonly repo: Repository) {}

  /**
   * readData reads every pack; readDataSubset (0 < f <= 1) reads that fraction of the packs, chosen
   * at random (at least one when there are packs).
   */
  async check(o: { readData?: boolean; readDataSubset?: number } = {}): Promise<CheckResult> {
    const r: CheckResult = { ok: true, snapshots: 0, packs: 0, indexes: 0, blobsRead: 0, packsRead: 0, unindexed: 0, damaged: [], affected: [] };
    const damage = (p: CheckProblem) => r.damaged.push(p);
    const store = this.repo.store;
    const blobs = new Map<string, BlobEntry>();
    const indexedPacks = new Map<string, number>();
    /** blob id → why it cannot be read. */
    const bad = new Map<string, string>();

    for await (const e of store.list('index')) {
      r.indexes++;
      try {
        const b = await store.get('index', e.name);
        if (!b || sha256Hex(b) !== e.name) throw new Error('does not match its hash');
        for (const p of decodeIndex(this.repo.keys.meta, b, e.name)) {
          indexedPacks.set(p.pack, p.size);
          for (const x of p.blobs) blobs.set(x.id, x);
        }
      } catch (err) {
        damage({ kind: 'index', name: e.name, problem: (err as Error).message });
      }
    }

    for await (const e of store.list('key')) {
      const b = await store.get('key', e.name);
      if (!b || sha256Hex(b) !== e.name) damage({ kind: 'key', name: e.name, problem: 'does not match its hash' });
    }

    const packSizes = new Map<string, number>();
    for await (const e of store.list('pack')) packSizes.set(e.name, e.size);
    r.packs = packSizes.size;
    for (const p of packSizes.keys()) if (!indexedPacks.has(p)) r.unindexed++;
    const badPack = new Map<string, string>();
    for (const [pack, size] of indexedPacks) {
      const actual = packSizes.get(pack);
      if (actual === undefined) badPack.set(pack, 'missing');
      else if (actual !== size) badPack.set(pack, `size ${actual}, indexed ${size}`);
    }

    if (o.readData || o.readDataSubset !== undefined) {
      let toRead = [...packSizes.keys()];
      if (!o.readData && o.readDataSubset !== undefined && o.readDataSubset < 1) {
        const want = Math.max(toRead.length > 0 ? 1 : 0, Math.ceil(toRead.length * o.readDataSubset));
        for (let i = toRead.length - 1; i > 0; i--) {
          const j = randomInt(i + 1);
          [toRead[i], toRead[j]] = [toRead[j]!, toRead[i]!];
        }
        toRead = toRead.slice(0, want);
      }
      // packs are read READ_AHEAD ahead of their authentication (in the crypto pool's threads)
      const reads: { pack: string; result: Promise<{ why: string; allBad: boolean } | undefined> }[] = [];
      const settle = async () => {
        const { pack, result } = reads.shift()!;
        const read = await result;
        if (read?.allBad) badPack.set(pack, read.why);
        else if (read) damage({ kind: 'pack', name: pack, problem: read.why });
      };
      for (const pack of toRead) {
        if (badPack.has(pack)) continue;
        r.packsRead++;
        const bytes = await this.repo.store.get('pack', pack);
        const result = this.readPack(pack, bytes, bad, r);
        result.catch(() => undefined); // settle() awaits it; one failing ends the check before the others are awaited
        reads.push({ pack, result });
        if (reads.length > READ_AHEAD) await settle();
      }
      while (reads.length > 0) await settle();
    }
    for (const [pack, why] of badPack) {
      damage({ kind: 'pack', name: pack, problem: why });
      for (const x of blobs.values()) if (x.pack === pack && !bad.has(x.id)) bad.set(x.id, `in pack ${pack}: ${why}`);
    }

    const treeMemo = new Map<string, { path: string; problem: string }[]>();
    const walk = async (tree: string): Promise<{ path: string; problem: string }[]> => {
      const memo = treeMemo.get(tree);
      if (memo) return memo;
      const out: { path: string; problem: string }[] = [];
      treeMemo.set(tree, out);
      const why = !blobs.has(tree) ? 'tree not in any index' : bad.get(tree);
      if (why) {
        damage({ kind: 'tree', name: tree, problem: why });
        out.push({ path: '', problem: `folder unreadable: ${why}` });
        return out;
      }
      let nodes;
      try {
        nodes = decodeTree(await this.repo.loadBlob(tree, 'tree'), tree);
      } catch (err) {
        damage({ kind: 'tree', name: tree, problem: (err as Error).message });
        out.push({ path: '', problem: `folder unreadable: ${(err as Error).message}` });
        return out;
      }
      for (const n of nodes) {
        for (const c of n.content ?? []) {
          const cw = !blobs.has(c) ? `chunk ${c} not in any index` : bad.has(c) ? `chunk ${c} ${bad.get(c)}` : undefined;
          if (cw) {
            out.push({ path: n.display, problem: cw });
            if (!blobs.has(c)) damage({ kind: 'blob', name: c, problem: 'referenced but not in any index' });
            break;
          }
        }
        if (n.subtree) for (const a of await walk(n.subtree)) out.push({ path: a.path ? `${n.display}/${a.path}` : n.display, problem: a.problem });
      }
      return out;
    };

    for await (const e of store.list('snapshot')) {
      r.snapshots++;
      let tree: string;
      try {
        const b = await store.get('snapshot', e.name);
        if (!b || sha256Hex(b) !== e.name) throw new Error('does not match its hash');
        tree = decodeSnapshot(this.repo.keys.meta, b, e.name).tree;
      } catch (err) {
        damage({ kind: 'snapshot', name: e.name, problem: (err as Error).message });
        r.affected.push({ snapshot: e.name, path: '', problem: 'snapshot unreadable' });
        continue;
      }
      for (const a of await walk(tree)) r.affected.push({ snapshot: e.name, path: a.path, problem: a.problem });
    }
    r.ok = r.damaged.length === 0 && r.affected.length === 0;
    return r;
  }

  /**
   * Reads one pack in full; returns why it is damaged (allBad: no blob of it can be trusted), or
   * undefined when whole. Blobs that fail go to `bad`.
   */
  private async readPack(pack: string, b: Buffer | undefined, bad: Map<string, string>, r: CheckResult): Promise<{ why: string; allBad: boolean } | undefined> {
    if (!b) return { why: 'missing', allBad: true };
    const c = await cryptoPool().checkPack(this.repo.keys.chunkId, this.repo.keys.pack, pack, b);
    if (c.header !== undefined) return { why: `header: ${c.header}`, allBad: true };
    for (const f of c.failures) bad.set(f.id, `damaged in pack ${pack}: ${f.message}`);
    r.blobsRead += c.blobs - c.failures.length;
    if (c.failures.length > 0) return { why: `${c.failures.length} of ${c.blobs} blobs fail authentication`, allBad: false };
    return c.hashOk ? undefined : { why: 'does not match its hash', allBad: false };
  }
}
