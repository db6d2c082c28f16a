/**
 * The restorer against real faults of the target: a file system that fills up (a small tmpfs),
 * one that loses writes at writeback (ext4 on a loop device whose backing file cannot grow), an
 * existing file in mode 'new', a damaged pack, sparse files, and a file system without extended
 * attributes. Real files and mounts (root).
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, statSync, openSync, closeSync, writeSync, ftruncateSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { testRepo, tempDir, flipByteInLargestPack } from '../repo/testing.js';
import { Archiver } from '../backup/archiver.js';
import { Restorer } from './restorer.js';
import { walk, temps, backedUp } from './faults.test-support.js';
import { setXattr } from '../platform/fsx.js';
import { cryptoPool } from '../crypto/pool.js';

const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const f of cleanup.reverse()) f();
});
async function tmpfs(size: string): Promise<string> {
  const dir = await tempDir('mv-fault-mnt-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  cleanup.push(() => execFileSync('umount', ['-l', dir]));
  return dir;
}

describe('restore faults', () => {
  it('a target that fills up mid-file: the file is named, nothing is left under its name, no temp file', async () => {
    const { t, snapshot } = await backedUp({ 'big.bin': randomBytes(3 << 20), 'small.txt': Buffer.from('hello') });
    const target = await tmpfs('1m');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual(['big.bin']);
    expect(r.errors[0]).toMatchObject({ path: 'big.bin', code: 'ENOSPC' });
    expect(walk(target)).toEqual(['small.txt']);
    await t.repo.close();
  });

  it('a target that fills up over many files: every placed file is whole, the others named, no temp file', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) files[`d/f${i}.bin`] = randomBytes(30_000 + i * 1000);
    const { t, src, snapshot } = await backedUp(files);
    const target = await tmpfs('1m');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(r.failed.length).toBeGreaterThan(0);
    expect(r.files + r.failed.length).toBe(60);
    for (const e of r.errors) expect(e).toMatchObject({ code: 'ENOSPC', path: expect.stringMatching(/^d\/f\d+\.bin$/) });
    expect(temps(target)).toEqual([]);
    const placed = walk(target).filter((p) => p.startsWith('d/'));
    expect(placed.length).toBe(r.files);
    for (const p of placed) expect(readFileSync(join(target, p)).equals(readFileSync(join(src, p))), p).toBe(true);
    await t.repo.close();
  });

  it("mode 'new' refuses an existing file and keeps it byte for byte; --overwrite replaces it", async () => {
    const { t, src, snapshot } = await backedUp({ 'a.txt': randomBytes(100_000), 'b.txt': Buffer.from('b') });
    const target = await tempDir('mv-fault-tgt-');
    const mine = randomBytes(5000);
    writeFileSync(join(target, 'a.txt'), mine);
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual(['a.txt']);
    expect(r.errors[0]!.message).toMatch(/a\.txt: exists in the target/);
    expect(readFileSync(join(target, 'a.txt')).equals(mine)).toBe(true);
    expect(walk(target)).toEqual(['a.txt', 'b.txt']);
    const o = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'overwrite' });
    expect(o.failed).toEqual([]);
    expect(readFileSync(join(target, 'a.txt')).equals(readFileSync(join(src, 'a.txt')))).toBe(true);
    expect(temps(target)).toEqual([]);
    await t.repo.close();
  });

  it('a pack damaged on disk after the backup: the file is named, nothing of it is written', async () => {
    const { t, snapshot } = await backedUp({ 'scan.dcm': randomBytes(6 << 20) });
    flipByteInLargestPack(join(t.dir, 'repo'));
    const target = await tempDir('mv-fault-tgt-');
    const inThreads = vi.spyOn(cryptoPool(), 'restoreFile');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    // the pool's thread gave the file back (nothing written); the repository's path named it
    expect(await inThreads.mock.results[0]!.value).toEqual({ again: expect.stringMatching(/authentication failed|does not match its id/) });
    inThreads.mockRestore();
    expect(r.failed).toEqual(['scan.dcm']);
    expect(r.errors[0]).toMatchObject({ path: 'scan.dcm', code: 'MV_ERR_DATA_CORRUPT' });
    expect(walk(target)).toEqual([]);
    await t.repo.close();
  });

  it('a disk that loses the writes at writeback (ext4 on a loop device over a backing file that cannot grow): the restore fails and says so', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`f${i}.bin`] = randomBytes(1 << 20);
    const { t, snapshot } = await backedUp(files);
    const backing = await tmpfs('12m');
    const img = join(backing, 'disk.img');
    execFileSync('truncate', ['-s', '200M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    const dev = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    cleanup.push(() => execFileSync('losetup', ['-d', dev]));
    const target = await tempDir('mv-fault-ext4-');
    execFileSync('mount', ['-o', 'errors=continue', dev, target]);
    cleanup.push(() => execFileSync('umount', ['-l', target]));
    // 40 MiB fit the file system's free space but not the 12 MiB its blocks can really be stored in
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target: join(target, 'r'), mode: 'new' });
    expect(r.failed.length).toBeGreaterThan(0);
    expect(r.errors).toContainEqual(expect.objectContaining({ code: 'MV_ERR_STORAGE_FAILED', message: expect.stringContaining(join(target, 'r')) }));
    await t.repo.close();
  });

  it('a sparse file restores sparse: 64 MiB with 8 KiB of data in two places takes well under 1 MiB', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-fault-src-');
    const fd = openSync(join(src, 'sparse.img'), 'w');
    writeSync(fd, randomBytes(4096), 0, 4096, 10 << 20);
    writeSync(fd, randomBytes(4096), 0, 4096, 40 << 20);
    ftruncateSync(fd, 64 << 20);
    closeSync(fd);
    const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tmpfs('64m');
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual([]);
    expect(readFileSync(join(target, 'sparse.img')).equals(readFileSync(join(src, 'sparse.img')))).toBe(true);
    expect(statSync(join(target, 'sparse.img')).blocks * 512).toBeLessThan(1 << 20);
    await t.repo.close();
  });

  it('a target without extended attributes (ramfs): the record is restored and the attribute it cannot hold is named', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-fault-src-');
    writeFileSync(join(src, 'referral.pdf'), 'a referral');
    setXattr(join(src, 'referral.pdf'), 'user.origin', Buffer.from('scanner-2'));
    const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tempDir('mv-fault-ramfs-');
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', target]);
    cleanup.push(() => execFileSync('umount', ['-l', target]));
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual([]);
    expect(readFileSync(join(target, 'referral.pdf'), 'utf8')).toBe('a referral');
    expect(r.errors).toEqual([{ path: 'referral.pdf', code: 'SKIPPED', message: expect.stringMatching(/^referral\.pdf: extended attribute user\.origin not restored: ENOTSUP/) }]);
    expect(temps(target)).toEqual([]);
    await t.repo.close();
  });
});
