import { describe, expect, it } from 'vitest';
import { OBJECT_HEADER, encodePartHeader, objectParts, sha256Hex, subjects } from '@medvault/protocol';
import { Assembler } from './assembler.js';

const SITE = 'clinic-a';
const REPO = 'ab'.repeat(16);
const limits = { maxObjectBytes: 10_000, maxObjects: 2, maxBytes: 20_000, timeoutMs: 1000 };

function partsOf(data: Uint8Array, partSize = 1024, o: { hash?: string } = {}) {
  const hash = o.hash ?? sha256Hex(data);
  return objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size: data.byteLength }, partSize).map((h) => ({
    subject: subjects.inbox(SITE, REPO, 'pack', hash),
    header: encodePartHeader(h),
    data: data.subarray(h.part * partSize, (h.part + 1) * partSize),
  }));
}

describe('Assembler', () => {
  it('completes an object from parts in any order, ignoring duplicates', () => {
    const a = new Assembler<number>(limits);
    const data = new Uint8Array(3000).map((_, i) => i % 251);
    const ps = partsOf(data);
    expect(a.add(ps[2]!.subject, ps[2]!.header, ps[2]!.data, 2, 0).kind).toBe('pending');
    expect(a.add(ps[0]!.subject, ps[0]!.header, ps[0]!.data, 0, 0).kind).toBe('pending');
    expect(a.add(ps[0]!.subject, ps[0]!.header, ps[0]!.data, 9, 0).kind).toBe('pending');
    const v = a.add(ps[1]!.subject, ps[1]!.header, ps[1]!.data, 1, 0);
    expect(v.kind).toBe('complete');
    if (v.kind !== 'complete') return;
    expect(v.object.actualHash).toBe(v.object.hash);
    expect(v.object.handles.sort()).toEqual([0, 1, 2, 9]);
    expect(a.inProgress).toEqual({ objects: 0, bytes: 0 });
  });

  it('refuses a part whose header does not match its subject, or has no header', () => {
    const a = new Assembler<number>(limits);
    const [p] = partsOf(new Uint8Array(100));
    const other = subjects.inbox('clinic-b', REPO, 'pack', 'cd'.repeat(32));
    expect(a.add(other, p!.header, p!.data, 1, 0)).toMatchObject({ kind: 'invalid', handles: [1] });
    expect(a.add(p!.subject, undefined, p!.data, 2, 0)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining(OBJECT_HEADER) });
    expect(a.add(p!.subject, p!.header, p!.data.subarray(1), 3, 0).kind).toBe('invalid');
    expect(a.add('mv.v1.off.clinic-a.x', p!.header, p!.data, 4, 0).kind).toBe('invalid');
  });

  it('refuses objects over the size cap and defers new objects when full', () => {
    const a = new Assembler<number>(limits);
    expect(a.add(...spread(partsOf(new Uint8Array(10_001))[0]!), 1, 0)).toMatchObject({ kind: 'too-large', size: 10_001 });
    const x = partsOf(new Uint8Array(9000).fill(1));
    const y = partsOf(new Uint8Array(9000).fill(2));
    const z = partsOf(new Uint8Array(9000).fill(3));
    expect(a.add(...spread(x[0]!), 1, 0).kind).toBe('pending');
    expect(a.add(...spread(y[0]!), 2, 0).kind).toBe('pending');
    expect(a.add(...spread(z[0]!), 3, 0)).toEqual({ kind: 'busy', handle: 3 });
    expect(a.inProgress).toEqual({ objects: 2, bytes: 18_000 });
  });

  it('drops objects whose parts stop arriving', () => {
    const a = new Assembler<number>(limits);
    const x = partsOf(new Uint8Array(3000));
    a.add(...spread(x[0]!), 1, 0);
    expect(a.expire(500)).toEqual([]);
    expect(a.expire(1000)).toMatchObject([{ received: 1, parts: 3, handles: [1] }]);
    expect(a.inProgress.objects).toBe(0);
  });

  it('reports a wrong hash in the complete object for the caller to refuse', () => {
    const a = new Assembler<number>(limits);
    const [p] = partsOf(new Uint8Array(10), 1024, { hash: 'ee'.repeat(32) });
    const v = a.add(...spread(p!), 1, 0);
    expect(v.kind === 'complete' && v.object.actualHash !== v.object.hash).toBe(true);
  });
});

function spread(p: { subject: string; header: string; data: Uint8Array }): [string, string, Uint8Array] {
  return [p.subject, p.header, p.data];
}
