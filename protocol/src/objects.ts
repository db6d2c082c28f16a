/**
 * Replicated objects on the wire: an object of `size` bytes travels as `parts` messages of at most
 * PART_SIZE payload bytes each, so every message stays under nats-server's default 1 MiB
 * max_payload with room for headers.
 */
import type { ObjectKind } from './ids.js';
import type { ObjectPart } from './messages.js';
import { MedvaultError, codes } from './errors.js';
import { canonicalJson } from './canonical.js';
import { decode } from './decode.js';

export const PART_SIZE = 1024 * 1024 - 32 * 1024;
/** Header carrying the mv.object.v1 JSON of a part. */
export const OBJECT_HEADER = 'Mv-Object';

export function partCount(size: number, partSize = PART_SIZE): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** The headers JSON for each part of an object. */
export function objectParts(o: { site: string; repo: string; kind: ObjectKind; hash: string; size: number }, partSize = PART_SIZE): ObjectPart[] {
  const parts = partCount(o.size, partSize);
  return Array.from({ length: parts }, (_, part) => ({ type: 'mv.object.v1', ...o, partSize, part, parts }));
}

export function encodePartHeader(p: ObjectPart): string {
  return canonicalJson(p);
}

/** Decodes and checks one part's header against its payload length. */
export function decodePart(header: string | undefined, payloadLength: number): ObjectPart {
  if (header === undefined) throw new MedvaultError(codes.MESSAGE_INVALID, `object part without ${OBJECT_HEADER} header`);
  const p = decode(header, 'mv.object.v1');
  const parts = partCount(p.size, p.partSize);
  const expected = p.part < parts - 1 ? p.partSize : p.size - p.partSize * (parts - 1);
  if (p.parts !== parts || p.part >= parts || payloadLength !== expected) {
    throw new MedvaultError(codes.MESSAGE_INVALID, `object ${p.kind}/${p.hash}: part ${p.part}/${p.parts} of ${payloadLength} bytes does not fit size ${p.size}`);
  }
  return p;
}

