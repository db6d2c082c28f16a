/**
 * Magic and version bytes of every repository file, and the sealed-file layout shared by index
 * and snapshot files: magic(4) version(1) salt(32) AES-256-GCM(codec(1) payload) tag(16).
 */
import { randomBytes } from 'node:crypto';
import { MedvaultError, codes } from '@medvault/protocol/core';
import { fileKey } from '../crypto/keys.js';
import { seal, open, nonce, nonceDomain, TAG_BYTES } from '../crypto/aead.js';
import { encodeBlob, decodeBlob } from './codec.js';

export const magic = { config: 'MVCF', key: 'MVKY', pack: 'MVPK', index: 'MVIX', snapshot: 'MVSN', walk: 'MVWC' } as const;
export const VERSION = 1;
export const HEADER_BYTES = 5;
export const SALT_BYTES = 32;

export function header(m: string): Buffer {
  return Buffer.concat([Buffer.from(m, 'latin1'), Buffer.from([VERSION])]);
}

/** Throws MV_ERR_FORMAT_UNKNOWN unless `b` starts with magic `m` and a version this reader knows. */
export function checkHeader(b: Uint8Array, m: string, what: string): void {
  if (b.length < HEADER_BYTES || Buffer.from(b.subarray(0, 4)).toString('latin1') !== m) {
    throw new MedvaultError(codes.FORMAT_UNKNOWN, `${what}: not a ${m} file (unknown magic)`);
  }
  if (b[4] !== VERSION) throw new MedvaultError(codes.FORMAT_UNKNOWN, `${what}: ${m} version ${b[4]} is not supported (this reader knows ${VERSION})`);
}

/** Compresses (when it helps) and seals `plaintext` under a key derived from `root` and a fresh salt. */
export function sealFile(m: string, root: Uint8Array, plaintext: Uint8Array): Buffer {
  const salt = randomBytes(SALT_BYTES);
  const { codec, data } = encodeBlob(plaintext);
  const body = seal(fileKey(root, salt), nonce(nonceDomain.header, 0), Buffer.concat([Buffer.from([codec]), data]), header(m));
  return Buffer.concat([header(m), salt, body]);
}

/** Authenticates and opens a sealed file; MV_ERR_FORMAT_UNKNOWN or MV_ERR_DATA_CORRUPT naming `what`. */
export function openFile(m: string, root: Uint8Array, b: Uint8Array, what: string): Buffer {
  checkHeader(b, m, what);
  if (b.length < HEADER_BYTES + SALT_BYTES + TAG_BYTES + 1) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: truncated`);
  const salt = b.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES);
  const inner = open(fileKey(root, salt), nonce(nonceDomain.header, 0), b.subarray(HEADER_BYTES + SALT_BYTES), what, b.subarray(0, HEADER_BYTES));
  return decodeBlob(inner[0]!, inner.subarray(1), undefined, what);
}

/** Parses JSON read from disk; MV_ERR_DATA_CORRUPT when it is not JSON. */
export function parseJson(b: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(b).toString('utf8'));
  } catch (cause) {
    throw new MedvaultError(codes.DATA_CORRUPT, `${what}: not valid JSON`, { cause });
  }
}
