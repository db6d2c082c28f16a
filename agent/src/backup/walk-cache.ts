/**
 * The walk cache: what the last backup of a store saw in each folder, so the next incremental
 * knows an unchanged folder's tree without loading it from the repository and without making a
 * node for each of its entries (the parent's trees and the per-entry work were most of a 1%
 * incremental's walk). Only a cache: the repository stays the truth, and a cache that is missing,
 * damaged, foreign or stale is not used (the walk loads the parent's trees as before) and is
 * written anew after the next snapshot.
 *
 * File `<cacheDir>/<repository id>.walk/<sha256 hex of the store name>`, sealed like snapshot
 * files (format.ts sealFile: magic "MVWC", version 1, salt, AES-256-GCM under the meta key), so a
 * damaged or forged file fails to open. Payload JSON:
 *   {v: 1, store, snapshot: the snapshot it was written after, indexes: [index file names the
 *    catalog had then], folders: {treeId: [fp, files, bytes, symlinks, others, {subfolder key:
 *    its tree id}]}}
 * fp is the SHA-256 of the folder's listing as scanDir gave it (names, and per entry errno, mode,
 * uid, gid, size, links, mtime, ctime, inode, dev, rdev, in readdir order); the counts are of the
 * folder's own entries. A folder whose listing has the same fp as when `treeId` was made has,
 * entry for entry, the stats that tree's nodes were made from, so the incremental rules (size,
 * mtime, ctime and inode for content; inode and ctime for extended attributes) give the same nodes.
 *
 * It is used only when it names the parent snapshot, every index file it names is still in the
 * catalog (an index lost, rewritten by prune or damaged may take chunk entries with it: the walk
 * then checks each chunk again), and the parent had no errors; it is written only after a run
 * without errors or files that changed while read (their nodes hold a later stat than the listing),
 * once the snapshot is committed, naming the index files that hold all its chunks; a folder an
 * entry vanished from while the run read it is left out (its tree lacks what its listing names). So while it is
 * usable every chunk the parent references is indexed, and the walk does not check them one by one.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { HASH_RE } from '@medvault/protocol';
import { magic, sealFile, openFile, parseJson } from '../repo/format.js';
import type { Repository } from '../repo/repository.js';
import { plainObject, str, uint } from '../repo/hand-check.js';

const count = z.number().int().nonnegative();
const hash = z.string().regex(HASH_RE);
const folderSchema = z.tuple([z.string(), count, count, count, count, z.record(z.string(), hash)]);
const cacheSchema = z.strictObject({ v: z.literal(1), store: z.string(), snapshot: hash, indexes: z.array(hash), folders: z.record(z.string(), folderSchema) });
type CacheBody = z.infer<typeof cacheSchema>;

const isHash = (x: unknown) => str(x, HASH_RE);

/**
 * cacheSchema checked by hand, never looser (what it does not accept goes to zod, which decides):
 * every incremental reads the cache before its walk, and zod took ~10-15 ms of CPU for the bench
 * data set's 503 folders. Own keys only, as zod's records and strict objects read them.
 */
function plainCache(j: unknown): CacheBody | undefined {
  if (!plainObject(j)) return undefined;
  for (const k of Object.keys(j)) if (k !== 'v' && k !== 'store' && k !== 'snapshot' && k !== 'indexes' && k !== 'folders') return undefined;
  if (j.v !== 1 || typeof j.store !== 'string' || !isHash(j.snapshot) || !Array.isArray(j.indexes) || !j.indexes.every(isHash) || !plainObject(j.folders)) return undefined;
  for (const f of Object.values(j.folders)) {
    if (!Array.isArray(f) || f.length !== 6 || typeof f[0] !== 'string' || !uint(f[1]) || !uint(f[2]) || !uint(f[3]) || !uint(f[4]) || !plainObject(f[5])) return undefined;
    for (const id of Object.values(f[5])) if (!isHash(id)) return undefined;
  }
  return j as CacheBody;
}

/** What a backup saw in one folder (its own entries; subfolders have entries of their own). */
export interface SeenFolder {
  /** listingPrint of the listing the tree was made from. */
  fp: string;
  files: number;
  bytes: number;
  symlinks: number;
  others: number;
  /** Each subfolder's tree id, by its key (raw name in base64url). */
  subdirs: Record<string, string>;
}

/** The fingerprint of a folder's listing: SHA-256 over scanDir's three parts. */
export function listingPrint(names: Uint8Array, nums: Float64Array, text: string): string {
  return createHash('sha256').update(names).update(new Uint8Array(nums.buffer, nums.byteOffset, nums.byteLength)).update(text, 'latin1').digest('base64url');
}

/** Exported for tests: the hand check agrees with cacheSchema. */
export { plainCache, cacheSchema };

function cacheFile(repo: Repository, store: string): string | undefined {
  if (repo.cacheDir === undefined) return undefined;
  return join(repo.cacheDir, `${repo.id}.walk`, createHash('sha256').update(store).digest('hex'));
}

/**
 * The folders seen by the backup that made `snapshot`, or undefined when there is no usable cache
 * (see the file's comment); never throws.
 */
export async function loadWalkCache(repo: Repository, store: string, snapshot: string): Promise<Map<string, SeenFolder> | undefined> {
  const file = cacheFile(repo, store);
  if (!file) return undefined;
  try {
    const json = parseJson(openFile(magic.walk, repo.keys.meta, await readFile(file), file), file);
    const body = plainCache(json) ?? cacheSchema.safeParse(json).data;
    if (!body || body.store !== store || body.snapshot !== snapshot) return undefined;
    const have = await repo.catalog.indexes();
    if (repo.damagedIndexes.size > 0 || !body.indexes.every((i) => have.has(i))) return undefined;
    return new Map(Object.entries(body.folders).map(([id, [fp, files, bytes, symlinks, others, subdirs]]) => [id, { fp, files, bytes, symlinks, others, subdirs }]));
  } catch {
    return undefined;
  }
}

/** Replaces the store's cache with `folders`, seen by the backup that made `snapshot` (atomic: temp file, rename). */
export async function saveWalkCache(repo: Repository, store: string, snapshot: string, folders: Map<string, SeenFolder>): Promise<void> {
  const file = cacheFile(repo, store);
  if (!file) return;
  const out: Record<string, z.infer<typeof folderSchema>> = {};
  for (const [id, f] of folders) out[id] = [f.fp, f.files, f.bytes, f.symlinks, f.others, f.subdirs];
  const body = { v: 1, store, snapshot, indexes: [...(await repo.catalog.indexes())].sort(), folders: out };
  await mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.tmp`; // one writer at a time: the writer lock is held
  await writeFile(tmp, sealFile(magic.walk, repo.keys.meta, Buffer.from(JSON.stringify(body))));
  await rename(tmp, file);
}
