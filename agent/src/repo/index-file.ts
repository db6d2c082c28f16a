/**
 * Index files (`index/<sha256>`): sealed "MVIX" files listing, for each pack written, its size and
 * every blob in it. The LevelDB catalog is rebuilt from these alone.
 * Plaintext JSON: {v:1, packs:[{pack, size, blobs:[[type, id, n, offset, length, rawLength, codec]]}]}.
 */
import { z } from 'zod';
import { MedvaultError, codes, HASH_RE } from '@medvault/protocol';
import { magic, sealFile, openFile, parseJson } from './format.js';
import { blobTypes, type BlobEntry } from './pack.js';

const u32 = z.number().int().min(0).max(0xffffffff);
const hex = z.string().regex(HASH_RE);
const schema = z.strictObject({
  v: z.literal(1),
  packs: z.array(z.strictObject({ pack: hex, size: z.number().int().positive(), blobs: z.array(z.tuple([z.enum(blobTypes), hex, u32, u32, u32, u32, z.number().int().min(0).max(255)])) })),
});

export interface IndexedPack {
  pack: string;
  size: number;
  blobs: BlobEntry[];
}

export function encodeIndex(metaRoot: Uint8Array, packs: IndexedPack[]): Buffer {
  const json = { v: 1, packs: packs.map((p) => ({ pack: p.pack, size: p.size, blobs: p.blobs.map((b) => [b.type, b.id, b.n, b.offset, b.length, b.rawLength, b.codec]) })) };
  return sealFile(magic.index, metaRoot, Buffer.from(JSON.stringify(json)));
}

export function decodeIndex(metaRoot: Uint8Array, bytes: Uint8Array, name: string): IndexedPack[] {
  const what = `index ${name}`;
  const r = schema.safeParse(parseJson(openFile(magic.index, metaRoot, bytes, what), what));
  if (!r.success) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: ${r.error.issues[0]?.message}`);
  return r.data.packs.map((p) => ({
    pack: p.pack,
    size: p.size,
    blobs: p.blobs.map(([type, id, n, offset, length, rawLength, codec]) => ({ type, id, pack: p.pack, n, offset, length, rawLength, codec })),
  }));
}
