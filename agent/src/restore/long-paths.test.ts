/**
 * Paths past PATH_MAX (4096 bytes) and names of 255 bytes back up and restore, byte for byte,
 * through platform/long-paths.ts (the kernel alone refuses such paths with ENAMETOOLONG).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archiver } from '../backup/archiver.js';
import { mkdir, open, readdir } from '../platform/long-paths.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { Restorer } from './restorer.js';

describe('long paths', () => {
  it('a record 6,000 bytes deep, under names of 255 bytes, round-trips', async () => {
    const src = join(await tempDir('mv-long-'), 'src');
    await mkdir(src);
    let deep = Buffer.from(src);
    const seg = Buffer.from('d'.repeat(254) + 'é'.normalize('NFC')).subarray(0, 255); // 255 bytes, last one cut: not UTF-8
    for (let i = 0; i < 23; i++) {
      deep = Buffer.concat([deep, Buffer.from('/'), seg]);
      await mkdir(deep);
    }
    expect(deep.length).toBeGreaterThan(5800);
    const file = Buffer.concat([deep, Buffer.from('/deep-record.json')]);
    const fh = await open(file, 'w');
    await fh.writeFile('{"resourceType":"Patient","deep":true}');
    await fh.close();

    const t = await testRepo();
    const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(b.errors).toEqual([]);
    expect(b.summary.files).toBe(1);
    const target = join(await tempDir('mv-long-out-'), 'out');
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual([]);
    expect(r.verified).toBe(1);
    const back = Buffer.concat([Buffer.from(target), file.subarray(src.length)]);
    const rh = await open(back, 'r');
    expect(await rh.readFile('utf8')).toBe('{"resourceType":"Patient","deep":true}');
    await rh.close();
    expect((await readdir(Buffer.concat([Buffer.from(target), Buffer.from('/'), seg]), { encoding: 'buffer' }))[0]).toEqual(seg);
  });
});
