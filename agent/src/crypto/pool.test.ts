import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CryptoPool } from './pool.js';
import { blobId } from './keys.js';
import { encodeBlob } from '../repo/codec.js';
import { PackBuilder } from '../repo/pack.js';
import fsx from '@medvault/fsx';

describe('crypto pool: backup work inline first', () => {
  it('encodes and packs on the calling thread until its budget is spent, then starts threads, with the same results', async () => {
    const key = randomBytes(32);
    const pool = new CryptoPool(1_000_000);
    const chunks = Array.from({ length: 6 }, (_, i) => (i % 2 ? randomBytes(300_000) : Buffer.from(`Observation ${i} `.repeat(20_000))));
    const want = chunks.map((c) => ({ id: blobId(key, c), ...encodeBlob(c) }));
    const first = await pool.encode(key, Buffer.from(chunks[0]!));
    expect(pool.threads).toBe(0); // a small backup never starts one
    const rest = [];
    for (const c of chunks.slice(1)) rest.push(await pool.encode(key, Buffer.from(c)));
    expect(pool.threads).toBeGreaterThan(0);
    for (const [i, g] of [first, ...rest].entries()) {
      expect(g.id).toBe(want[i]!.id);
      expect(Buffer.from(g.data).equals(Buffer.from(want[i]!.data))).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 3000)); // the thread loads meanwhile; later chunks go to it
    expect((await pool.encode(key, Buffer.from(chunks[1]!))).id).toBe(want[1]!.id);
  });
});

describe('crypto pool (real worker threads)', () => {
  const key = randomBytes(32);
  const packRoot = randomBytes(32);
  const pool = new CryptoPool(0); // backup work too goes to the threads at once

  it('gives the same ids and encodings as the main thread, for compressible and random chunks', async () => {
    const chunks = [Buffer.from('Observation glucose mmol/L '.repeat(4000)), randomBytes(700_000), Buffer.alloc(0), Buffer.from('x')];
    const want = chunks.map((c) => ({ id: blobId(key, c), ...encodeBlob(c), rawLength: c.length }));
    const got = await Promise.all(chunks.map((c) => pool.encode(key, Buffer.from(c))));
    for (const [i, g] of got.entries()) {
      expect(g.id).toBe(want[i]!.id);
      expect(g.codec).toBe(want[i]!.codec);
      expect(g.rawLength).toBe(want[i]!.rawLength);
      expect(Buffer.from(g.data).equals(Buffer.from(want[i]!.data))).toBe(true);
    }
    expect(await pool.id(key, Buffer.from(chunks[1]!))).toBe(want[1]!.id);
  });

  it('checks a whole pack, and names each blob that a flipped byte damaged', async () => {
    const b = new PackBuilder(packRoot);
    const blobs = Array.from({ length: 5 }, (_, i) => randomBytes(10_000 + i));
    for (const x of blobs) b.add('data', blobId(key, x), x);
    const { hash, bytes, entries } = b.finish();
    expect(await pool.checkPack(key, packRoot, hash, Buffer.from(bytes))).toEqual({ hashOk: true, blobs: 5, failures: [] });
    const bad = Buffer.from(bytes);
    bad[entries[2]!.offset + 7]! ^= 1;
    const r = await pool.checkPack(key, packRoot, hash, bad);
    expect(r.hashOk).toBe(false);
    expect(r.failures.map((f) => f.id)).toEqual([entries[2]!.id]);
    const noHeader = Buffer.from(bytes);
    noHeader[noHeader.length - 10]! ^= 1;
    expect((await pool.checkPack(key, packRoot, hash, noHeader)).header).toMatch(/authentication failed/);
  });

  it('opens a blob only when it authenticates and matches its id; otherwise MV_ERR_DATA_CORRUPT', async () => {
    const b = new PackBuilder(packRoot);
    const x = randomBytes(5000);
    b.add('data', blobId(key, x), x);
    const { bytes, entries } = b.finish();
    const { packKey, packSalt } = await import('../repo/pack.js');
    const pk = packKey(packRoot, packSalt(bytes, entries[0]!.pack));
    const e = entries[0]!;
    const sealed = () => Buffer.from(bytes.subarray(e.offset, e.offset + e.length));
    expect((await pool.open(key, pk, e, sealed())).equals(x)).toBe(true);
    const flipped = sealed();
    flipped[3]! ^= 1;
    await expect(pool.open(key, pk, e, flipped)).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT' });
    await expect(pool.open(key, pk, { ...e, id: blobId(key, Buffer.from('other')) }, sealed())).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringMatching(/does not match its id/) });
  });

  it("frees each pack it checks once checked, not at its thread's next garbage collection", async () => {
    const b = new PackBuilder(packRoot);
    for (let i = 0; i < 4; i++) {
      const x = randomBytes(1 << 20);
      b.add('data', blobId(key, x), x);
    }
    const { hash, bytes } = b.finish();
    await pool.checkPack(key, packRoot, hash, Buffer.from(bytes)); // the threads are up
    const before = process.memoryUsage().arrayBuffers; // counts the copies handed over until some thread frees them
    for (let i = 0; i < 12; i++) expect((await pool.checkPack(key, packRoot, hash, Buffer.from(bytes))).failures).toEqual([]);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(12 << 20); // 48 MiB when the threads keep them
  });

  it('seals a pack of small and large blobs that checks whole, and frees the small ones it copied', async () => {
    const plain = [randomBytes(5000), randomBytes(100_000), randomBytes(70)];
    const b = new PackBuilder(packRoot);
    for (const x of plain) b.addEncoded('data', { id: blobId(key, x), codec: 0, data: Buffer.from(x), rawLength: x.length });
    const { parts } = b.parts();
    const small = parts.blobs[0]!;
    const { hash, bytes } = await pool.pack(parts);
    expect(small.length).toBe(0); // left to the collector it outlived the pack
    expect(await pool.checkPack(key, packRoot, hash, bytes)).toEqual({ hashOk: true, blobs: 3, failures: [] });
  });

  it('seals the next pack into a written one given back (recycle), at a 4096-byte boundary for O_DIRECT; dropSpare frees the one kept', async () => {
    const partsOf = (n: number) => {
      const b = new PackBuilder(packRoot);
      for (let i = 0; i < n; i++) {
        const x = randomBytes(300_000);
        b.addEncoded('data', { id: blobId(key, x), codec: 0, data: Buffer.from(x), rawLength: x.length });
      }
      return b.parts().parts;
    };
    const first = await pool.pack(partsOf(8));
    expect(first.bytes.byteOffset).toBe(fsx.alignGap(first.bytes.buffer as ArrayBuffer));
    const capacity = first.bytes.buffer.byteLength;
    pool.recycle(first.bytes);
    const second = await pool.pack(partsOf(4)); // smaller: sealed into the first one's buffer
    expect(first.bytes.length).toBe(0); // that buffer went to the thread
    expect(second.bytes.buffer.byteLength).toBe(capacity); // and came back holding the second (a new one: its size + 4095)
    expect(second.bytes.byteOffset).toBe(fsx.alignGap(second.bytes.buffer as ArrayBuffer));
    expect(await pool.checkPack(key, packRoot, second.hash, Buffer.from(second.bytes))).toEqual({ hashOk: true, blobs: 4, failures: [] });
    pool.recycle(second.bytes);
    pool.dropSpare();
    expect(second.bytes.length).toBe(0);
    pool.recycle(second.bytes); // freed already: not kept (a detached buffer cannot be transferred)
    expect((await pool.pack(partsOf(1))).bytes.length).toBeGreaterThan(300_000);
  });

  it('seals and checks a pack of the largest size in its threads (their young generation is small)', async () => {
    const big = [randomBytes((8 << 20) - 1), randomBytes(8 << 20)]; // the largest: just under PACK_TARGET, then a largest chunk
    const b = new PackBuilder(packRoot);
    for (const x of big) b.addEncoded('data', await pool.encode(key, Buffer.from(x)));
    const { hash, bytes } = await pool.pack(b.parts().parts);
    expect(bytes.length).toBeGreaterThan(16 << 20);
    expect(await pool.checkPack(key, packRoot, hash, bytes)).toEqual({ hashOk: true, blobs: 2, failures: [] });
  });

  it('loads no message schema in its threads (zod and the schemas cost each thread ~11 MiB)', () => {
    const packages = new Set<string>();
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, from] of readFileSync(file, 'utf8').matchAll(/^(?:import|export) (?!type )[^;]*? from '([^']+)'/gm)) {
        if (from!.startsWith('.')) walk(resolve(dirname(file), from!.replace(/\.js$/, '.ts')));
        else packages.add(from!);
      }
    };
    walk(fileURLToPath(new URL('./pool-worker.ts', import.meta.url)));
    expect(seen.size).toBeGreaterThan(5);
    expect([...packages].filter((p) => p === '@medvault/protocol' || p === 'zod')).toEqual([]);
  });
});
