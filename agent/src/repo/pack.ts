/**
 * Pack format (like restic's): magic "MVPK", version, salt(32), sealed blobs, the sealed pack
 * header, then the header's sealed length (u32 LE). packKey = HKDF(pack root, salt); blob i is
 * sealed with nonce (data, i) and the header with nonce (header, 0), so no nonce repeats.
 * Header entry (74 bytes): type(1) codec(1) id(32) offset(u32) length(u32) rawLength(u32), LE.
 */
import { randomBytes } from 'node:crypto';
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol/core';
import { fileKey } from '../crypto/keys.js';
import { seal, sealInto, open, openInPlace, nonce, nonceDomain, TAG_BYTES } from '../crypto/aead.js';
import { encodeBlob, decodeBlob } from './codec.js';
import { magic, header, checkHeader, HEADER_BYTES, SALT_BYTES } from './format.js';
import { aligned, release } from '../platform/fsx.js';

export const blobTypes = ['data', 'tree'] as const;
export type BlobType = (typeof blobTypes)[number];

/** Where a blob lives: its pack, position n (its nonce counter), sealed byte range and codec. */
export interface BlobEntry {
  type: BlobType;
  id: string;
  pack: string;
  n: number;
  offset: number;
  length: number;
  rawLength: number;
  codec: number;
}

const ENTRY_BYTES = 74;
export const PACK_PREFIX = HEADER_BYTES + SALT_BYTES;
const ID_RE = /^[0-9a-f]{64}$/;

/** What a pack is built from: its key and salt, each blob's encoded bytes (blob i sealed with nonce (data, i)), and the plain header table. */
export interface PackParts {
  key: Uint8Array;
  salt: Uint8Array;
  blobs: Uint8Array[];
  table: Uint8Array;
}

/**
 * Seals the parts into the pack's bytes (the crypto pool runs this off the main thread), at a
 * 4096-byte boundary for O_DIRECT (platform/fsx.ts aligned): in `into` when it has room (a written
 * pack's buffer, see CryptoPool.recycle), else in a new buffer.
 */
export function buildPack(p: PackParts, into?: ArrayBuffer): Buffer {
  const sealedHeader = seal(p.key, nonce(nonceDomain.header, 0), p.table, header(magic.pack));
  let size = PACK_PREFIX + sealedHeader.length + 4;
  for (const b of p.blobs) size += b.length + TAG_BYTES;
  const out = aligned(size, into);
  out.set(header(magic.pack), 0);
  out.set(p.salt, HEADER_BYTES);
  let o = PACK_PREFIX;
  p.blobs.forEach((b, i) => {
    sealInto(p.key, nonce(nonceDomain.data, i), b, out, o);
    o += b.length + TAG_BYTES;
  });
  out.set(sealedHeader, o);
  out.writeUInt32LE(sealedHeader.length, o + sealedHeader.length);
  return out;
}

/** Accumulates encoded blobs for one pack in memory; parts() gives what buildPack seals, finish() seals it here. */
export class PackBuilder {
  private readonly salt = randomBytes(SALT_BYTES);
  private readonly key: Buffer;
  private readonly blobs: Uint8Array[] = [];
  private readonly entries: Omit<BlobEntry, 'pack'>[] = [];
  private offset = PACK_PREFIX;

  constructor(packRoot: Uint8Array) {
    this.key = fileKey(packRoot, this.salt);
  }
  get size(): number {
    return this.offset;
  }
  get count(): number {
    return this.entries.length;
  }
  add(type: BlobType, id: string, plain: Uint8Array): void {
    this.addEncoded(type, { id, rawLength: plain.length, ...encodeBlob(plain) });
  }
  /** Adds a blob already encoded (id, codec, bytes: crypto/pool.ts does that off the main thread); sealing it adds TAG_BYTES. */
  addEncoded(type: BlobType, b: { id: string; codec: number; data: Uint8Array; rawLength: number }): void {
    const length = b.data.length + TAG_BYTES;
    this.entries.push({ type, id: b.id, n: this.entries.length, offset: this.offset, length, rawLength: b.rawLength, codec: b.codec });
    this.blobs.push(b.data);
    this.offset += length;
  }
  /** What buildPack needs, and the entries once the pack's hash (its name) is known. */
  parts(): { parts: PackParts; entries: (hash: string) => BlobEntry[] } {
    const h = Buffer.alloc(this.entries.length * ENTRY_BYTES);
    this.entries.forEach((e, i) => {
      const o = i * ENTRY_BYTES;
      h[o] = blobTypes.indexOf(e.type);
      h[o + 1] = e.codec;
      h.write(e.id, o + 2, 'hex');
      h.writeUInt32LE(e.offset, o + 34);
      h.writeUInt32LE(e.length, o + 38);
      h.writeUInt32LE(e.rawLength, o + 42);
    });
    // a literal, not `{ ...e, pack }`: a spread copy plus one more property gets a hidden class of
    // its own, ~300 bytes per blob more (56,000 classes for one pack of tiny files)
    const entries = (hash: string) => this.entries.map((e): BlobEntry => ({ type: e.type, id: e.id, pack: hash, n: e.n, offset: e.offset, length: e.length, rawLength: e.rawLength, codec: e.codec }));
    return { parts: { key: this.key, salt: this.salt, blobs: this.blobs, table: h }, entries };
  }
  finish(): { hash: string; bytes: Buffer; entries: BlobEntry[] } {
    const { parts, entries } = this.parts();
    const bytes = buildPack(parts);
    const hash = sha256Hex(bytes);
    return { hash, bytes, entries: entries(hash) };
  }
}

/** Reads and authenticates a whole pack's header; validates every entry's range. */
export function readPackHeader(packRoot: Uint8Array, bytes: Uint8Array, pack: string): BlobEntry[] {
  const what = `pack ${pack}`;
  checkHeader(bytes, magic.pack, what);
  if (bytes.length < PACK_PREFIX + TAG_BYTES + 4) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: truncated`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = b.readUInt32LE(b.length - 4);
  const hstart = b.length - 4 - hlen;
  if (hlen < TAG_BYTES || hstart < PACK_PREFIX) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: header length ${hlen} does not fit`);
  const key = fileKey(packRoot, b.subarray(HEADER_BYTES, PACK_PREFIX));
  const h = open(key, nonce(nonceDomain.header, 0), b.subarray(hstart, b.length - 4), `${what} header`, header(magic.pack));
  if (h.length % ENTRY_BYTES !== 0) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: header of ${h.length} bytes`);
  const entries: BlobEntry[] = [];
  let expect = PACK_PREFIX;
  for (let i = 0, o = 0; o < h.length; i++, o += ENTRY_BYTES) {
    const type = blobTypes[h[o]!];
    const e = { type: type!, codec: h[o + 1]!, id: h.toString('hex', o + 2, o + 34), pack, n: i, offset: h.readUInt32LE(o + 34), length: h.readUInt32LE(o + 38), rawLength: h.readUInt32LE(o + 42) };
    if (type === undefined || e.offset !== expect || e.length < TAG_BYTES || e.offset + e.length > hstart) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: header entry ${i} is invalid`);
    expect += e.length;
    entries.push(e);
  }
  return entries;
}

/** The pack's salt, from its first PACK_PREFIX bytes. */
export function packSalt(prefix: Uint8Array, pack: string): Buffer {
  checkHeader(prefix, magic.pack, `pack ${pack}`);
  if (prefix.length < PACK_PREFIX) throw new MedvaultError(codes.DATA_CORRUPT, `pack ${pack}: truncated`);
  return Buffer.from(prefix.subarray(HEADER_BYTES, PACK_PREFIX));
}

/** Decrypts and decodes one blob's sealed bytes; MV_ERR_DATA_CORRUPT when they do not authenticate. */
export function openBlob(packRoot: Uint8Array, salt: Uint8Array, e: BlobEntry, sealed: Uint8Array): Buffer {
  return openBlobWithKey(fileKey(packRoot, salt), e, sealed);
}

/** openBlob with the pack's key already derived (packKey(packRoot, salt)); `inPlace` decrypts in `sealed` itself (see aead openInPlace). */
export function openBlobWithKey(key: Uint8Array, e: BlobEntry, sealed: Uint8Array, inPlace = false): Buffer {
  const what = `blob ${e.id} in pack ${e.pack}`;
  if (sealed.length !== e.length) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: truncated`);
  const iv = nonce(nonceDomain.data, e.n);
  const data = inPlace ? openInPlace(key, iv, Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength), what) : open(key, iv, sealed, what);
  const plain = decodeBlob(e.codec, data, e.rawLength, what);
  if (!inPlace && plain.buffer !== data.buffer) release(data); // decompressed: the decrypted bytes are garbage now
  return plain;
}

/** The key of one pack, from the pack root key and the pack's salt. */
export function packKey(packRoot: Uint8Array, salt: Uint8Array): Buffer {
  return fileKey(packRoot, salt);
}

export function isBlobId(s: unknown): s is string {
  return typeof s === 'string' && ID_RE.test(s);
}
