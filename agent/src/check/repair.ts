/**
 * Self-healing of a local repository from the off-site copy (`check --read-data --repair`).
 *
 * 1. Check with readData. Every damaged or missing pack, index, snapshot or key file it names is to
 *    be healed; for trees and chunks that no index names, so are the off-site index files the disk
 *    lacks that name them (a deleted index file).
 * 2. Each is fetched from the off-site copy (which verifies every part and the SHA-256), the damaged
 *    local file (if any) removed, and the verified bytes written through Store.put (atomic, durable).
 * 3. Rebuild the catalog and check again, at most three rounds (a healed index can reveal that its
 *    packs are missing too). An object the off-site copy lacks, or has damaged too, is not healable.
 */
import type { Repository } from '../repo/repository.js';
import type { ReadableStore, Store } from '../store/store.js';
import { decodeIndex } from '../repo/index-file.js';
import { Checker, type CheckProblem, type CheckResult } from './checker.js';

export interface HealedObject {
  kind: 'pack' | 'index' | 'snapshot' | 'key';
  name: string;
  /** What the check found. */
  problem: string;
  healed: boolean;
  /** Why it could not be healed. */
  why?: string;
}

export interface RepairResult {
  /** The check after the last round of healing. */
  check: CheckResult;
  objects: HealedObject[];
  /** True when nothing was damaged or everything damaged was healed and the last check is clean. */
  ok: boolean;
}

const healable = (k: CheckProblem['kind']): k is HealedObject['kind'] => k === 'pack' || k === 'index' || k === 'snapshot' || k === 'key';

export async function repairRepository(repo: Repository, local: Store, offsite: ReadableStore): Promise<RepairResult> {
  const objects = new Map<string, HealedObject>();
  let check = await new Checker(repo).check({ readData: true });
  for (let round = 0; round < 3 && !check.ok; round++) {
    const todo = new Map<string, HealedObject>();
    const add = (kind: HealedObject['kind'], name: string, problem: string) => {
      const key = `${kind}/${name}`;
      if (!objects.has(key)) todo.set(key, { kind, name, problem, healed: false });
    };
    for (const d of check.damaged) if (healable(d.kind)) add(d.kind, d.name, d.problem);
    const unindexed = new Set(check.damaged.filter((d) => (d.kind === 'blob' || d.kind === 'tree') && /not in any index/.test(d.problem)).map((d) => d.name));
    if (unindexed.size > 0) {
      for await (const e of offsite.list('index')) {
        if (await local.has('index', e.name)) continue;
        const b = await offsite.get('index', e.name).catch(() => undefined);
        let names = false;
        try {
          names = b !== undefined && decodeIndex(repo.keys.meta, b, e.name).some((p) => p.blobs.some((x) => unindexed.has(x.id)));
        } catch {
          names = true; // damaged off site: reported as not healable below
        }
        if (names) add('index', e.name, 'missing: it indexes blobs a snapshot needs');
      }
    }
    if (todo.size === 0) break;
    for (const [key, o] of todo) {
      objects.set(key, o);
      try {
        const b = await offsite.get(o.kind, o.name);
        if (!b) {
          o.why = 'the off-site copy does not have it';
          continue;
        }
        await local.delete(o.kind, o.name);
        await local.put(o.kind, o.name, b);
        o.healed = true;
      } catch (err) {
        o.why = (err as Error).message;
      }
    }
    await repo.rebuildCatalog();
    check = await new Checker(repo).check({ readData: true });
  }
  const list = [...objects.values()];
  return { check, objects: list, ok: check.ok && list.every((o) => o.healed) };
}
