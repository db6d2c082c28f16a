/**
 * Reassembly of replicated objects from their parts, in bounded memory. Pure: no I/O, the clock is
 * passed in. Each call hands back what the caller must do with the messages (`H` is the caller's
 * handle on a message: ack it when the object is safe, terminate it when it is garbage, nak it to
 * see it again later).
 */
import { decodePart, parseObjectSubject, sha256Hex, type ObjectKind, type ObjectPart } from '@medvault/protocol';

export interface AssemblyLimits {
  /** Objects larger than this are refused outright. */
  maxObjectBytes: number;
  /** Objects in progress at once; parts of further objects are deferred. */
  maxObjects: number;
  /** Bytes reserved by objects in progress (each reserves its full size on its first part). */
  maxBytes: number;
  /** An object whose parts stop arriving for this long is dropped. */
  timeoutMs: number;
}

export interface ObjectId {
  site: string;
  repo: string;
  kind: ObjectKind;
  hash: string;
}

export interface CompleteObject<H> extends ObjectId {
  size: number;
  partSize: number;
  /** Payloads in part order. */
  parts: Uint8Array[];
  /** SHA-256 of the concatenated parts, hex. */
  actualHash: string;
  handles: H[];
}

export type PartVerdict<H> =
  | { kind: 'pending' }
  | { kind: 'complete'; object: CompleteObject<H> }
  /** Garbage: terminate `handles` and log `reason`. */
  | { kind: 'invalid'; reason: string; id?: ObjectId; handles: H[] }
  /** Bigger than maxObjectBytes: terminate `handles` and log. */
  | { kind: 'too-large'; id: ObjectId; size: number; handles: H[] }
  /** No room now: nak the handle with a delay. */
  | { kind: 'busy'; handle: H };

interface Assembly<H> {
  header: ObjectPart;
  parts: Array<Uint8Array | undefined>;
  received: number;
  handles: H[];
  lastAt: number;
}

/** Key of an object: its inbox subject without the prefix. */
export function objectKey(o: ObjectId): string {
  return `${o.site}.${o.repo}.${o.kind}.${o.hash}`;
}

export class Assembler<H> {
  private readonly open = new Map<string, Assembly<H>>();
  private reserved = 0;

  constructor(private readonly limits: AssemblyLimits) {}

  get inProgress(): { objects: number; bytes: number } {
    return { objects: this.open.size, bytes: this.reserved };
  }

  /**
   * Takes one part. The subject MUST be `mv.v1.in.<site>.<repo>.<kind>.<hash>` and agree with the
   * `Mv-Object` header; every part of an object MUST agree on size and part size.
   */
  add(subject: string, header: string | undefined, data: Uint8Array, handle: H, now: number): PartVerdict<H> {
    const s = parseObjectSubject(subject);
    if (!s || s.area !== 'in') return { kind: 'invalid', reason: `not an inbox object subject: ${subject}`, handles: [handle] };
    const id: ObjectId = { site: s.site, repo: s.repo, kind: s.kind, hash: s.hash };
    let p: ObjectPart;
    try {
      p = decodePart(header, data.byteLength);
    } catch (err) {
      return { kind: 'invalid', reason: (err as Error).message, id, handles: [handle] };
    }
    if (p.site !== s.site || p.repo !== s.repo || p.kind !== s.kind || p.hash !== s.hash) {
      return { kind: 'invalid', reason: `header names ${p.site}/${p.repo}/${p.kind}/${p.hash}, subject ${subject}`, id, handles: [handle] };
    }
    const key = objectKey(id);
    let a = this.open.get(key);
    if (a && (a.header.size !== p.size || a.header.partSize !== p.partSize)) {
      this.drop(key, a);
      return { kind: 'invalid', reason: `parts disagree on size (${a.header.size} vs ${p.size}) or part size`, id, handles: [...a.handles, handle] };
    }
    if (!a) {
      if (p.size > this.limits.maxObjectBytes) return { kind: 'too-large', id, size: p.size, handles: [handle] };
      const full = this.open.size >= this.limits.maxObjects || this.reserved + p.size > this.limits.maxBytes;
      if (full && this.open.size > 0) return { kind: 'busy', handle };
      a = { header: p, parts: new Array(p.parts), received: 0, handles: [], lastAt: now };
      this.open.set(key, a);
      this.reserved += p.size;
    }
    a.handles.push(handle);
    a.lastAt = now;
    if (a.parts[p.part] === undefined) {
      a.parts[p.part] = data;
      a.received++;
    }
    if (a.received < p.parts) return { kind: 'pending' };
    this.drop(key, a);
    const parts = a.parts as Uint8Array[];
    return {
      kind: 'complete',
      object: { ...id, size: p.size, partSize: p.partSize, parts, actualHash: sha256Hex(...parts), handles: a.handles },
    };
  }

  /** Drops objects idle for longer than the timeout; their handles should be terminated. */
  expire(now: number): Array<{ id: ObjectId; received: number; parts: number; handles: H[] }> {
    const out = [];
    for (const [key, a] of this.open) {
      if (now - a.lastAt < this.limits.timeoutMs) continue;
      this.drop(key, a);
      const { site, repo, kind, hash, parts } = a.header;
      out.push({ id: { site, repo, kind, hash }, received: a.received, parts, handles: a.handles });
    }
    return out;
  }

  private drop(key: string, a: Assembly<H>): void {
    if (this.open.delete(key)) this.reserved -= a.header.size;
  }
}
