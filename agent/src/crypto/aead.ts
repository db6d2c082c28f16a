/**
 * AES-256-GCM with 12-byte nonces built from a domain (4 bytes) and a counter (8 bytes). Within
 * one key a (domain, counter) pair MUST be used once; each pack and metadata file has its own key.
 */
import { sealInto as fsxSealInto, openInPlace as fsxOpenInPlace } from '../platform/fsx.js';
import { MedvaultError, codes } from '@medvault/protocol/core';

export const TAG_BYTES = 16;
/** Nonce domains: blobs of a pack count from 0 in DATA; a pack header and whole files use HEADER. */
export const nonceDomain = { data: 0, header: 1 } as const;

export function nonce(domain: number, counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(domain, 0);
  n.writeBigUInt64BE(BigInt(counter), 4);
  return n;
}

/**
 * Writes ciphertext || tag of `plaintext` at out[offset..offset + plaintext.length + TAG_BYTES)
 * (the fsx addon, so a pack's blobs are sealed straight into the pack: Node's Cipher returns a
 * new buffer per call). Byte for byte what createCipheriv('aes-256-gcm') gives (aead.test).
 */
export const sealInto: (key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number, aad?: Uint8Array) => void = fsxSealInto;

/** Returns ciphertext || tag. */
export function seal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES);
  sealInto(key, iv, plaintext, out, 0, aad);
  return out;
}

/** Opens ciphertext || tag into a new buffer; throws MV_ERR_DATA_CORRUPT (naming `what`) when it does not authenticate. */
export function open(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, what: string, aad?: Uint8Array): Buffer {
  return openInPlace(key, iv, Buffer.from(sealed), what, aad);
}

/**
 * Opens ciphertext || tag where it lies (the fsx addon): returns the plaintext as a view of
 * `sealed`, whose bytes are overwritten; throws MV_ERR_DATA_CORRUPT (naming `what`) when it does
 * not authenticate, and then nothing of `sealed` may be used. Saves the buffer per blob that
 * Node's Decipher returns (restore, check --read-data).
 */
export function openInPlace(key: Uint8Array, iv: Uint8Array, sealed: Buffer, what: string, aad?: Uint8Array): Buffer {
  if (sealed.length < TAG_BYTES) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: too short to be sealed`);
  if (!fsxOpenInPlace(key, iv, sealed, aad)) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: authentication failed`);
  return sealed.subarray(0, sealed.length - TAG_BYTES);
}
