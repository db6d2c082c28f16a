/**
 * The repository's `config`: magic "MVCF", version, then JSON {version, id, created, chunker}.
 * Not secret and not encrypted; the only file not named by its hash.
 */
import { z } from 'zod';
import { MedvaultError, codes, REPO_RE } from '@medvault/protocol';
import { magic, header, checkHeader, HEADER_BYTES, parseJson } from './format.js';

export const FORMAT_VERSION = 1;
const MiB = 1024 * 1024;

export const repoConfigSchema = z.strictObject({
  version: z.literal(FORMAT_VERSION),
  id: z.string().regex(REPO_RE),
  created: z.number().int().nonnegative(),
  chunker: z
    .strictObject({
      min: z.number().int().min(64 * 1024),
      avg: z.number().int(),
      max: z.number().int().max(16 * MiB),
    })
    .refine((c) => c.min < c.avg && c.avg < c.max && (c.avg & (c.avg - 1)) === 0, 'chunker needs min < avg < max, avg a power of two'),
});
export type RepoConfig = z.infer<typeof repoConfigSchema>;

export const defaultChunker = { min: 512 * 1024, avg: MiB, max: 8 * MiB };

export function encodeConfig(c: RepoConfig): Buffer {
  return Buffer.concat([header(magic.config), Buffer.from(JSON.stringify(c))]);
}

export function decodeConfig(b: Uint8Array, what = 'config'): RepoConfig {
  checkHeader(b, magic.config, what);
  const r = repoConfigSchema.safeParse(parseJson(b.subarray(HEADER_BYTES), what));
  if (!r.success) throw new MedvaultError(codes.FORMAT_UNKNOWN, `${what}: ${r.error.issues[0]?.message}`);
  return r.data;
}
