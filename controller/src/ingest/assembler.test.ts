import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OBJECT_HEADER, encodePartHeader, objectParts, sha256Hex, subjects } from '@medvault/protocol';
import { Assembler } from './assembler.js';

const SITE = 'clinic-a';
const REPO = 'ab'.repeat(16);
const limits = { maxObjectBytes: 10_000, maxObjects: 2, timeoutMs: 1000 };

function partsOf(data: Uint8Array, partSize = 1024, o: { hash?: string } = {}) {
  const hash = o.hash ?? sha256Hex(data);
  return objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size: data.byteLength }, partSize).map((h) => ({
    subject: subjects.inbox(SITE, REPO, 'pack', hash),
    header: encodePartHeader(h),
    data: data.subarray(h.part * partSize, (h.part + 1) * partSize),
  }));
}

describe('Assembler', () => {
  it('hashes an object part by part in order, holding none of its bytes', () => {
    const a = new Assembler(limits);
    const data = new Uint8Array(3000).map((_, i) => i % 251);
    const ps = partsOf(data);
    const first = a.check(ps[0]!.subject, ps[0]!.header, ps[0]!.data.byteLength);
    if (first.kind !== 'part') throw new Error(first.kind);
    const obj = a.begin(first.key, first.id, first.part, 0);
    const done = ps.map((p) => a.advance(obj, p.data, 0));
    expect(done).toEqual([false, false, true]);
    expect(obj.hash.digest('hex')).toBe(sha256Hex(data));
    expect(a.inProgress).toEqual({ objects: 1, bytes: 3000 });
    a.drop(first.key);
    expect(a.inProgress).toEqual({ objects: 0, bytes: 0 });
  });

  it('resumes from a stored prefix with its hash', () => {
    const a = new Assembler(limits);
    const data = new Uint8Array(2500).fill(9);
    const ps = partsOf(data);
    const c = a.check(ps[1]!.subject, ps[1]!.header, ps[1]!.data.byteLength);
    if (c.kind !== 'part') throw new Error(c.kind);
    const obj = a.begin(c.key, c.id, c.part, 0, { next: 1, bytes: 1024, hash: createHash('sha256').update(ps[0]!.data), suffix: '.7' });
    a.advance(obj, ps[1]!.data, 0);
    expect(a.advance(obj, ps[2]!.data, 0)).toBe(true);
    expect(obj.hash.digest('hex')).toBe(sha256Hex(data));
    expect(obj.suffix).toBe('.7');
  });

  it('refuses a part whose header does not match its subject, its length or its object', () => {
    const a = new Assembler(limits);
    const [p] = partsOf(new Uint8Array(100));
    const other = subjects.inbox('clinic-b', REPO, 'pack', 'cd'.repeat(32));
    expect(a.check(other, p!.header, 100)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('header names') });
    expect(a.check(p!.subject, undefined, 100)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining(OBJECT_HEADER) });
    expect(a.check(p!.subject, p!.header, 99)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('does not fit') });
    expect(a.check('mv.v1.off.clinic-a.x', p!.header, 100).kind).toBe('invalid');
    const c = a.check(p!.subject, p!.header, 100);
    if (c.kind !== 'part') throw new Error(c.kind);
    a.begin(c.key, c.id, c.part, 0);
    const [q] = partsOf(new Uint8Array(100), 2048, { hash: c.id.hash });
    expect(a.check(q!.subject, q!.header, 100)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('disagree') });
  });

  it('refuses objects over the size cap (0 bytes is fine) and is full at maxObjects', () => {
    const a = new Assembler(limits);
    const big = partsOf(new Uint8Array(10_001))[0]!;
    expect(a.check(big.subject, big.header, 1024)).toMatchObject({ kind: 'too-large', size: 10_001 });
    const empty = partsOf(new Uint8Array(0));
    expect(empty).toHaveLength(1);
    const e = a.check(empty[0]!.subject, empty[0]!.header, 0);
    expect(e).toMatchObject({ kind: 'part', part: { parts: 1, size: 0 } });
    for (const fill of [1, 2]) {
      const p = partsOf(new Uint8Array(9000).fill(fill))[0]!;
      const c = a.check(p.subject, p.header, 1024);
      if (c.kind === 'part') a.begin(c.key, c.id, c.part, 0);
    }
    expect(a.full).toBe(true);
  });

  it('sets aside objects whose parts stop arriving', () => {
    const a = new Assembler(limits);
    const [p] = partsOf(new Uint8Array(3000));
    const c = a.check(p!.subject, p!.header, 1024);
    if (c.kind !== 'part') throw new Error(c.kind);
    a.advance(a.begin(c.key, c.id, c.part, 0), p!.data, 0);
    expect(a.expire(500)).toEqual([]);
    expect(a.expire(1000)).toMatchObject([{ next: 1, header: { parts: 3 } }]);
    expect(a.inProgress.objects).toBe(0);
  });
});
