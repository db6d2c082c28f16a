/**
 * Blob compression: a codec byte per blob (0 = none, 1 = zstd). Data that a quick zstd probe of
 * its first 64 KiB cannot shrink by 5% (DICOM pixel data, JPEG, random) is stored as is.
 */
import { compress, decompress } from 'zstd-napi';
import { MedvaultError, codes } from '@medvault/protocol/core'; // not the barrel: a crypto pool thread loads this file (see core)

export const codecs = { none: 0, zstd: 1 } as const;
export type Codec = (typeof codecs)[keyof typeof codecs];

const PROBE = 64 * 1024;
const LEVEL = 3;

export function encodeBlob(plain: Uint8Array): { codec: Codec; data: Uint8Array } {
  if (plain.length < 64) return { codec: codecs.none, data: plain };
  if (plain.length <= PROBE) {
    const z = compress(plain, { compressionLevel: LEVEL }); // small: the probe would be the whole blob
    return z.length < plain.length * 0.95 ? { codec: codecs.zstd, data: z } : { codec: codecs.none, data: plain };
  }
  const probe = plain.subarray(0, PROBE);
  if (compress(probe, { compressionLevel: 1 }).length > probe.length * 0.95) return { codec: codecs.none, data: plain };
  const z = compress(plain, { compressionLevel: LEVEL });
  return z.length < plain.length ? { codec: codecs.zstd, data: z } : { codec: codecs.none, data: plain };
}

/** Decodes a blob; when `rawLength` is given the result MUST have that length. */
export function decodeBlob(codec: number, data: Uint8Array, rawLength: number | undefined, what: string): Buffer {
  let out: Buffer;
  if (codec === codecs.none) out = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  else if (codec === codecs.zstd) {
    try {
      out = decompress(data);
    } catch (cause) {
      throw new MedvaultError(codes.DATA_CORRUPT, `${what}: zstd data does not decompress`, { cause });
    }
  } else throw new MedvaultError(codes.FORMAT_UNKNOWN, `${what}: unknown codec ${codec}`);
  if (rawLength !== undefined && out.length !== rawLength) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: ${out.length} bytes where ${rawLength} were stored`);
  return out;
}
