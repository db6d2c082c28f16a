import { describe, it, expect } from 'vitest';
import { open, stat, readFile, rm } from 'node:fs/promises';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from './archiver.js';
import { Restorer } from '../restore/restorer.js';

async function sha(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Samples this process's RSS every 20 ms while `fn` runs; returns the peak increase in bytes. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss - base)), 20);
  try {
    const value = await fn();
    return { value, peak: Math.max(peak, process.memoryUsage().rss - base) };
  } finally {
    clearInterval(timer);
  }
}

describe('scale (scaled down; the 1M-file and 20 GiB runs are in the bench)', () => {
  it('a 320 MiB file backs up and restores streaming, with memory bounded far below its size', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-big-');
    const file = join(src, 'ct-volume.dcm');
    const fh = await open(file, 'w');
    const ks = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16));
    for (let i = 0; i < 320; i++) await fh.write(ks.update(Buffer.alloc(1024 * 1024)));
    await fh.close();
    const b = await peakRss(() => new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' }));
    const out = await tempDir('mv-big-out-');
    const r = await peakRss(() => new Restorer(t.repo).restore({ snapshot: b.value.snapshot, paths: [], target: out, mode: 'new' }));
    expect(r.value.failed).toEqual([]);
    expect(await sha(join(out, 'ct-volume.dcm'))).toBe(await sha(file));
    console.log(`320 MiB file: peak RSS increase backup ${(b.peak / 2 ** 20).toFixed(0)} MiB, restore ${(r.peak / 2 ** 20).toFixed(0)} MiB`);
    expect(b.peak).toBeLessThan(160 * 2 ** 20);
    expect(r.peak).toBeLessThan(160 * 2 ** 20);
    await rm(src, { recursive: true });
    await rm(out, { recursive: true });
  }, 120_000);

  it('a sparse file stays sparse through backup and restore', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-sparse-');
    const file = join(src, 'disk.img');
    const fh = await open(file, 'w');
    await fh.write(Buffer.from('header'), 0, 6, 0);
    await fh.write(Buffer.from('middle'), 0, 6, 100 * 1024 * 1024);
    await fh.truncate(256 * 1024 * 1024);
    await fh.close();
    const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(b.summary.storedBytes).toBeLessThan(2 * 1024 * 1024); // the zero chunks deduplicate
    const out = await tempDir('mv-sparse-out-');
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target: out, mode: 'new' });
    expect(r.failed).toEqual([]);
    const st = await stat(join(out, 'disk.img'));
    expect(st.size).toBe(256 * 1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(20 * 1024 * 1024); // two 8 MiB chunks hold data; the rest stays holes
    expect(await sha(join(out, 'disk.img'))).toBe(await sha(file));
    expect((await readFile(join(out, 'disk.img'))).subarray(0, 6).toString()).toBe('header');
  }, 60_000);
});
