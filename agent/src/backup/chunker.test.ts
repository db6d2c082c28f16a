import { describe, it, expect } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { Chunker, type ChunkerParams } from './chunker.js';
import { deriveKeys } from '../crypto/keys.js';
import { gearScan } from '../platform/fsx.js';

const params: ChunkerParams = { min: 2048, avg: 8192, max: 65536 };
const gearA = deriveKeys(Buffer.alloc(32, 1)).gear;
const gearB = deriveKeys(Buffer.alloc(32, 2)).gear;

function chunks(gear: Uint32Array, data: Buffer, step = 7919, p = params): Buffer[] {
  const c = new Chunker(gear, p);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += step) out.push(...c.push(Buffer.from(data.subarray(i, i + step))));
  out.push(...c.end());
  return out;
}
const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex').slice(0, 32) + b.length);

describe('Chunker (FastCDC)', () => {
  const data = randomBytes(1024 * 1024);

  it('is deterministic for one key, whatever the read sizes, and loses no byte', () => {
    const a = chunks(gearA, data, 7919);
    const b = chunks(gearA, data, 65536);
    expect(hex(a)).toEqual(hex(b));
    expect(Buffer.concat(a).equals(data)).toBe(true);
    expect(a.length).toBeGreaterThan(40);
  });

  it('cuts at different places for different keys', () => {
    const a = chunks(gearA, data).map((c) => c.length);
    const b = chunks(gearB, data).map((c) => c.length);
    expect(a).not.toEqual(b);
  });

  it('respects min and max; small inputs are one chunk; empty input none', () => {
    const a = chunks(gearA, data);
    for (const c of a.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(params.min);
      expect(c.length).toBeLessThanOrEqual(params.max);
    }
    expect(chunks(gearA, Buffer.alloc(300000))).toHaveLength(Math.ceil(300000 / params.max)); // zeros never match: cut at max
    expect(chunks(gearA, data.subarray(0, 1000))).toHaveLength(1);
    expect(chunks(gearA, Buffer.alloc(0))).toHaveLength(0);
  });

  it('keeps most chunks after an insertion', () => {
    const edited = Buffer.concat([data.subarray(0, 500000), Buffer.from('inserted!'), data.subarray(500000)]);
    const before = new Set(hex(chunks(gearA, data)));
    const after = hex(chunks(gearA, edited));
    const reused = after.filter((c) => before.has(c)).length;
    expect(reused).toBeGreaterThanOrEqual(after.length - 3);
  });

  it('cuts where it always has (existing repositories deduplicate against these boundaries)', () => {
    // xorshift32 bytes with a run of zeros and one of a repeated byte; the lengths' digests were
    // taken from the all-JavaScript chunker before the gear loop moved to the addon
    const data = Buffer.alloc(24 * 1024 * 1024);
    let x = 2463534242;
    for (let i = 0; i < data.length; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data.writeUInt32LE(x >>> 0, i);
    }
    data.fill(0, 300_000, 420_000).fill(0x41, 900_000, 1_000_000);
    const gear = deriveKeys(Buffer.alloc(32, 7)).gear;
    const golden: [ChunkerParams, number, number, string][] = [
      [params, 2_000_000, 190, 'af9aa6366b485e8b'],
      [{ min: 64 * 1024, avg: 128 * 1024, max: 256 * 1024 }, 4_000_000, 25, '42a9d6d653c39a6d'],
      [{ min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 }, data.length, 23, '723bcd96a1b24f79'], // the repository default
    ];
    for (const [p, n, count, digest] of golden) {
      const lens = chunks(gear, data.subarray(0, n), 100_003, p).map((c) => c.length);
      expect([lens.length, createHash('sha256').update(lens.join(',')).digest('hex').slice(0, 16)]).toEqual([count, digest]);
    }
  });

  it('with frees, cuts the same chunks, each its own ArrayBuffer, and frees each read once used up', () => {
    const reads: Buffer[] = [];
    const c = new Chunker(gearA, params, true);
    const out: Buffer[] = [];
    for (let i = 0; i < data.length; i += 7919) {
      const b = Buffer.allocUnsafeSlow(Math.min(7919, data.length - i));
      data.copy(b, 0, i);
      reads.push(b);
      out.push(...c.push(b));
    }
    out.push(...c.end());
    expect(hex(out)).toEqual(hex(chunks(gearA, data)));
    expect(Buffer.concat(out).equals(data)).toBe(true);
    for (const x of out) expect([x.byteOffset, x.buffer.byteLength]).toEqual([0, x.length]);
    expect(reads.every((b) => b.buffer.byteLength === 0)).toBe(true); // freed (detached)
    // a chunk that is one whole read is handed over as it is, not freed
    const small = Buffer.allocUnsafeSlow(1000);
    data.copy(small, 0, 0, 1000);
    const d = new Chunker(gearA, params, true);
    expect(d.push(small)).toEqual([]);
    expect(d.end()[0]!.buffer).toBe(small.buffer);
    expect(small.buffer.byteLength).toBe(1000);
  });

  it('gearScan refuses ranges outside its buffer and a wrong table or state', () => {
    const buf = Buffer.alloc(100);
    const state = new Int32Array(2);
    expect(() => gearScan(gearA, buf, 0, 50, 101, -1, -1, state)).toThrow(/bad table, state or range/);
    expect(() => gearScan(gearA, buf, 60, 50, 100, -1, -1, state)).toThrow(/bad table, state or range/);
    expect(() => gearScan(gearA, buf, -1, 50, 100, -1, -1, state)).toThrow(/bad table, state or range/);
    expect(() => gearScan(gearA.subarray(1), buf, 0, 50, 100, -1, -1, state)).toThrow(/bad table, state or range/);
    expect(() => gearScan(gearA, buf, 0, 50, 100, -1, -1, new Int32Array(1))).toThrow(/bad table, state or range/);
    expect(gearScan(gearA, buf, 10, 50, 100, 0, 0, state)).toBe(11); // mask 0: cuts after the first byte
  });
});
