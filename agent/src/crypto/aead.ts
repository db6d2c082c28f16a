/**
 * AES-256-GCM with 12-byte nonces built from a domain (4 bytes) and a counter (8 bytes). Within
 * one key a (domain, counter) pair MUST be used once; each pack and metadata file has its own key.
 */
import { createDecipheriv } from 'node:crypto';
import { sealInto as fsxSealInto } from '../platform/fsx.js';
import { MedvaultError, codes } from '@medvault/protocol/core'; // not the barrel: a crypto pool thread loads this file (see core)

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

/** Opens ciphertext || tag; throws MV_ERR_DATA_CORRUPT (naming `what`) when it does not authenticate. */
export function open(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, what: string, aad?: Uint8Array): Buffer {
  if (sealed.length < TAG_BYTES) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: too short to be sealed`);
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    if (aad) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const head = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    const tail = d.final(); // empty for GCM: then the plaintext is not copied again
    return tail.length ? Buffer.concat([head, tail]) : head;
  } catch (cause) {
    throw new MedvaultError(codes.DATA_CORRUPT, `${what}: authentication failed`, { cause });
  }
}
