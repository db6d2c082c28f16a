/**
 * Snapshot files (`snapshots/<sha256>`): sealed "MVSN" JSON naming the root tree and what the run
 * saw. A snapshot is written last, so a visible snapshot references only durable data.
 */
import { z } from 'zod';
import { MAX_TAGS, MedvaultError, codes, HASH_RE } from '@medvault/protocol';
import { magic, sealFile, openFile, parseJson } from './format.js';

const count = z.number().int().nonnegative();
export const snapshotSchema = z.strictObject({
  v: z.literal(1),
  time: count,
  store: z.string().min(1).max(200),
  job: z.enum(['full', 'incremental', 'continuous']),
  tree: z.string().regex(HASH_RE),
  host: z.string().max(255),
  source: z.string().max(4096),
  parent: z.string().regex(HASH_RE).optional(),
  partial: z.boolean(),
  summary: z.strictObject({ files: count, dirs: count, symlinks: count, others: count, bytes: count, newBytes: count, storedBytes: count, reused: count, changed: count, errors: count }),
  errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).max(1000),
  tags: z.array(z.string().max(200)).max(MAX_TAGS),
  actor: z.strictObject({ kind: z.enum(['scheduler', 'user', 'agent']), id: z.string().max(200) }),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export function encodeSnapshot(metaRoot: Uint8Array, s: Snapshot): Buffer {
  return sealFile(magic.snapshot, metaRoot, Buffer.from(JSON.stringify(s)));
}

export function decodeSnapshot(metaRoot: Uint8Array, bytes: Uint8Array, name: string): Snapshot {
  const what = `snapshot ${name}`;
  const r = snapshotSchema.safeParse(parseJson(openFile(magic.snapshot, metaRoot, bytes, what), what));
  if (!r.success) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: ${r.error.issues[0]?.message}`);
  return r.data;
}
