/**
 * Reassembly of replicated objects part by part, in part order, in bounded memory: per object only
 * the next part expected and the running SHA-256 are kept, never its bytes (the ingestor stores each
 * part off site as it arrives), so an object of many GiB costs no more than one of a few bytes.
 * Pure: no I/O, the clock is passed in.
 */
import { createHash, type Hash } from 'node:crypto';
import { decodePart, parseObjectSubject, type ObjectKind, type ObjectPart } from '@medvault/protocol';

export interface AssemblyLimits {
  /** Objects larger than this are refused outright. */
  maxObjectBytes: number;
  /** Objects in progress at once; parts of further objects are deferred. */
  maxObjects: number;
  /** An object whose parts stop arriving for this long is forgotten (its stored parts stay off site). */
  timeoutMs: number;
}

export interface ObjectId {
  site: string;
  repo: string;
  kind: ObjectKind;
  hash: string;
}

/** One object being reassembled: parts 0 … next-1 are stored and hashed. */
export interface Assembly {
  readonly id: ObjectId;
  /** Size, part size and part count, as every part must state them. */
  readonly header: ObjectPart;
  /** Suffix of the off-site message ids of this copy (`<key>.<part><suffix>`). */
  readonly suffix: string;
  next: number;
  /** Parts 0 … stored-1 are confirmed stored; the ingestor's publishes of stored … next-1 are in flight. */
  stored: number;
  /** Settles once every part up to `next` is stored (rejects when one of them failed). */
  tail: Promise<void>;
  /** Bytes stored so far. */
  bytes: number;
  readonly hash: Hash;
  lastAt: number;
}

export type PartCheck =
  | { kind: 'part'; id: ObjectId; key: string; part: ObjectPart }
  /** Garbage: terminate the message and log `reason`. */
  | { kind: 'invalid'; reason: string; id?: ObjectId }
  /** Bigger than maxObjectBytes: terminate the message and log. */
  | { kind: 'too-large'; id: ObjectId; size: number };

/** Key of an object: its inbox subject without the prefix. */
export function objectKey(o: ObjectId): string {
  return `${o.site}.${o.repo}.${o.kind}.${o.hash}`;
}

export class Assembler {
  private readonly open = new Map<string, Assembly>();

  constructor(private readonly limits: AssemblyLimits) {}

  /** Objects in progress and the bytes of theirs stored off site but not yet verified. */
  get inProgress(): { objects: number; bytes: number } {
    let bytes = 0;
    for (const a of this.open.values()) bytes += a.bytes;
    return { objects: this.open.size, bytes };
  }

  /**
   * Checks one part. The subject MUST be `mv.v1.in.<site>.<repo>.<kind>.<hash>` and agree with the
   * `Mv-Object` header, which must fit the payload length; an object in progress MUST keep its size
   * and part size.
   */
  check(subject: string, header: string | undefined, length: number): PartCheck {
    const s = parseObjectSubject(subject);
    if (!s || s.area !== 'in') return { kind: 'invalid', reason: `not an inbox object subject: ${subject}` };
    const id: ObjectId = { site: s.site, repo: s.repo, kind: s.kind, hash: s.hash };
    let p: ObjectPart;
    try {
      p = decodePart(header, length);
    } catch (err) {
      return { kind: 'invalid', reason: (err as Error).message, id };
    }
    if (p.site !== s.site || p.repo !== s.repo || p.kind !== s.kind || p.hash !== s.hash) {
      return { kind: 'invalid', reason: `header names ${p.site}/${p.repo}/${p.kind}/${p.hash}, subject ${subject}`, id };
    }
    if (p.size > this.limits.maxObjectBytes) return { kind: 'too-large', id, size: p.size };
    const key = objectKey(id);
    const a = this.open.get(key);
    if (a && (a.header.size !== p.size || a.header.partSize !== p.partSize)) {
      return { kind: 'invalid', reason: `parts disagree on size (${a.header.size} vs ${p.size}) or part size`, id };
    }
    return { kind: 'part', id, key, part: p };
  }

  get(key: string): Assembly | undefined {
    return this.open.get(key);
  }

  /** True when no further object may begin now. */
  get full(): boolean {
    return this.open.size >= this.limits.maxObjects;
  }

  /** Begins (or resumes, from `next` with the hash of the parts before it) an object. */
  begin(key: string, id: ObjectId, header: ObjectPart, now: number, from: { next: number; bytes: number; hash: Hash; suffix: string } = { next: 0, bytes: 0, hash: createHash('sha256'), suffix: '' }): Assembly {
    const a: Assembly = { id, header, suffix: from.suffix, next: from.next, stored: from.next, tail: Promise.resolve(), bytes: from.bytes, hash: from.hash, lastAt: now };
    this.open.set(key, a);
    return a;
  }

  /** Records that part `a.next` (`data`) is stored or being stored; returns true when it was the last one. */
  advance(a: Assembly, data: Uint8Array, now: number): boolean {
    a.hash.update(data);
    a.next++;
    a.bytes += data.byteLength;
    a.lastAt = now;
    return a.next >= a.header.parts;
  }

  drop(key: string): void {
    this.open.delete(key);
  }

  /** Forgets objects idle for longer than the timeout and returns them. */
  expire(now: number): Assembly[] {
    const out: Assembly[] = [];
    for (const [key, a] of this.open) {
      if (now - a.lastAt < this.limits.timeoutMs) continue;
      this.open.delete(key);
      out.push(a);
    }
    return out;
  }
}
