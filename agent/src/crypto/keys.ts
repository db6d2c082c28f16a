/**
 * crypto/: the repository's keys and ciphers. A random 32-byte master key per repository; every
 * working key is derived from it with HKDF-SHA256 under a fixed label, so one master unlocks all.
 */
import { hkdfSync, randomBytes, createHmac } from 'node:crypto';

export const KEY_BYTES = 32;

/** Keys derived from a repository's master key. */
export interface RepoKeys {
  /** HMAC-SHA256 key for blob ids: id = HMAC(chunkId, plaintext). */
  chunkId: Buffer;
  /** 256 gear values for FastCDC, secret so chunk boundaries do not fingerprint content. */
  gear: Uint32Array;
  /** Root of per-pack keys: packKey = HKDF(pack, salt). */
  pack: Buffer;
  /** Root of per-file keys of index and snapshot files. */
  meta: Buffer;
}

function derive(key: Uint8Array, label: string, length: number, salt: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, `medvault v1 ${label}`, length));
}

export function newMasterKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function deriveKeys(master: Uint8Array): RepoKeys {
  const g = derive(master, 'gear', 1024);
  const gear = new Uint32Array(256);
  for (let i = 0; i < 256; i++) gear[i] = g.readUInt32LE(i * 4);
  return { chunkId: derive(master, 'chunk-id', 32), gear, pack: derive(master, 'pack', 32), meta: derive(master, 'meta', 32) };
}

/** The key of one pack or metadata file, from its root key and the file's random salt. */
export function fileKey(root: Uint8Array, salt: Uint8Array): Buffer {
  return derive(root, 'file', 32, salt);
}

/** A blob id: HMAC-SHA256 of the plaintext under the chunk-id key, as 64 hex characters. */
export function blobId(chunkIdKey: Uint8Array, plaintext: Uint8Array): string {
  return createHmac('sha256', chunkIdKey).update(plaintext).digest('hex');
}
