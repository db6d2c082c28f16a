/**
 * The restorer against bad luck and tampering, found while trying to break the restore in the
 * crypto pool's threads: a stale catalog under files restored in parallel, a crypto thread that
 * dies mid-file, a LevelDB catalog damaged inside a table, hard links whose first name fails, a
 * target folder swapped for a symlink mid-restore (not fixed), a pack replaced by a named pipe.
 * Real files (root for mkfifo).
 */
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, openSync, writeSync, closeSync, statSync, mkdirSync, writeFileSync, linkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { Archiver } from '../backup/archiver.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tempDir, flipByteInLargestPack } from '../repo/testing.js';
import { execFileSync } from 'node:child_process';
import { Restorer } from './restorer.js';
import { walk, temps, backedUp } from './faults.test-support.js';
import { cryptoPool } from '../crypto/pool.js';
import { MedvaultError, codes } from '@medvault/protocol';

/** `target` holds exactly `src`'s paths, every file byte for byte. */
function sameTree(src: string, target: string): void {
  expect(walk(target)).toEqual(walk(src));
  for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name).slice(src.length + 1);
    expect(readFileSync(join(target, p)).equals(readFileSync(join(src, p))), p).toBe(true);
  }
}

describe('restore: breaking it', () => {
  it('a stale catalog (every data blob at a wrong offset): one rebuild, and every file restored, also those in flight meanwhile', async () => {
    const files: Record<string, Buffer> = {};
    for (let d = 0; d < 4; d++) for (let i = 0; i < 30; i++) files[`d${d}/f${i}.bin`] = randomBytes(2000 + i * 300);
    const { t, src, snapshot } = await backedUp(files);
    // the cache is wrong, the repository is not: each data blob's entry points 16 bytes off
    const catalog = t.repo.catalog as unknown as { kv: { put(e: [string, string][]): Promise<void> } };
    const stale: [string, string][] = [];
    for await (const ids of t.repo.catalog.blobIds()) {
      for (const id of ids) {
        const e = (await t.repo.catalog.blob(id))!;
        if (e.type === 'data') stale.push([`b:${id}`, JSON.stringify([0, e.pack, e.n, e.offset + 16, e.length, e.rawLength, e.codec])]);
      }
    }
    await catalog.kv.put(stale);
    const target = await tempDir('mv-break-tgt-');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(120);
    sameTree(src, target);
    expect(temps(target)).toEqual([]);
  });

  it('a crypto thread that dies mid-file: no temp file is left, and its files are restored on the main thread', async () => {
    const files: Record<string, Buffer> = { 'scan/big.dcm': randomBytes(48 << 20) };
    for (let i = 0; i < 20; i++) files[`notes/n${i}.txt`] = randomBytes(200_000);
    const { t, src, snapshot } = await backedUp(files);
    const target = await tempDir('mv-break-tgt-');
    const restoring = new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    // once the big file's temp file is there (written in a thread), every thread dies (as on an out-of-memory abort)
    const writing = () => temps(target).some((p) => p.startsWith('scan/'));
    for (let i = 0; i < 5000 && !writing(); i++) await new Promise((r) => setTimeout(r, 2));
    expect(writing()).toBe(true);
    const pool = cryptoPool() as unknown as { slots: { worker: { terminate(): Promise<number> } }[] };
    expect(pool.slots.length).toBeGreaterThan(0);
    await Promise.all(pool.slots.map((s) => s.worker.terminate()));
    const r = await restoring;
    expect(temps(target)).toEqual([]);
    expect(r.errors).toEqual([]);
    sameTree(src, target);
  });

  it("a crypto thread that dies right after placing its file (mode 'new'): the file there is checked and kept, not refused as existing", async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`d/f${i}.bin`] = randomBytes(100_000 + i);
    const { t, src, snapshot } = await backedUp(files);
    // the thread's real work, then the answer a dead thread gives (the name is placed, the reply lost)
    const pool = cryptoPool();
    const real = pool.restoreFile.bind(pool);
    let lost = 0;
    pool.restoreFile = async (...a) => {
      const r = await real(...a);
      if (lost++ < 3) throw new MedvaultError(codes.STORAGE_FAILED, 'crypto thread failed: crypto thread exited with code 1', { retryable: true });
      return r;
    };
    try {
      const target = await tempDir('mv-break-tgt-');
      const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
      expect(lost).toBeGreaterThan(3);
      expect(r.errors).toEqual([]);
      expect([r.files, r.verified]).toEqual([6, 6]);
      sameTree(src, target);
      expect(temps(target)).toEqual([]);
    } finally {
      pool.restoreFile = real;
    }
  });

  it('a LevelDB catalog damaged inside a table (bad block): the cache is rebuilt from the index files and everything restored', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 300; i++) files[`d/f${i}.bin`] = randomBytes(300 + i);
    const { t, src, snapshot } = await backedUp(files);
    await t.reopen(); // LevelDB turns its log into a table on open
    await t.repo.close();
    const db = join(t.cacheDir, t.repo.id);
    const tables = readdirSync(db).filter((n) => n.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    for (const n of tables) {
      // the data blocks' first half: the table's index and footer stay good, so it opens
      const fd = openSync(join(db, n), 'r+');
      const half = Math.floor(statSync(join(db, n)).size / 2);
      writeSync(fd, randomBytes(half), 0, half, 100);
      closeSync(fd);
    }
    await t.reopen();
    const target = await tempDir('mv-break-tgt-');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(r.errors).toEqual([]);
    sameTree(src, target);
  });

  it("hard links whose first name fails (it exists, mode 'new'): the other names are still one inode", async () => {
    const { t, src } = await backedUp({ 'a/x.bin': randomBytes(300_000), 'd/note.txt': Buffer.from('n') });
    for (const n of ['a/b/y.bin', 'c/z.bin']) {
      mkdirSync(join(src, n, '..'), { recursive: true });
      linkSync(join(src, 'a/x.bin'), join(src, n));
    }
    const b = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tempDir('mv-break-tgt-');
    mkdirSync(join(target, 'a'));
    writeFileSync(join(target, 'a/x.bin'), 'mine');
    const r = await new Restorer(t.repo).restore({ snapshot: b.snapshot, paths: [], target, mode: 'new' });
    expect(r.failed).toEqual(['a/x.bin']);
    for (const n of ['a/b/y.bin', 'c/z.bin']) expect(readFileSync(join(target, n)).equals(readFileSync(join(src, 'a/x.bin'))), n).toBe(true);
    expect(statSync(join(target, 'a/b/y.bin')).ino).toBe(statSync(join(target, 'c/z.bin')).ino);
    expect(statSync(join(target, 'a/b/y.bin')).nlink).toBe(2);
    expect(temps(target)).toEqual([]);
  });

  it('a folder of the target swapped for a symlink while the restore runs (someone else writes in the target): nothing is written outside it', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`a/r${i}.json`] = randomBytes(1000);
    const { t, snapshot } = await backedUp(files);
    const target = await tempDir('mv-break-tgt-');
    const outside = await tempDir('mv-break-outside-');
    let swapped = false;
    const onProgress = () => {
      if (swapped) return;
      swapped = true;
      renameSync(join(target, 'a'), join(target, 'a.real'));
      symlinkSync(outside, join(target, 'a'));
    };
    await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new', onProgress });
    expect(swapped).toBe(true);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('a pack replaced by a named pipe (FIFO): the restore ends and names it instead of waiting forever in open()', { timeout: 30_000 }, async () => {
    const { t, snapshot } = await backedUp({ 'scan.dcm': randomBytes(3 << 20), 'note.txt': Buffer.from('n') });
    const pack = flipByteInLargestPack(join(t.dir, 'repo'));
    unlinkSync(pack);
    execFileSync('mkfifo', [pack]);
    const target = await tempDir('mv-break-tgt-');
    const r = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    // one pack holds the trees too here: the root is what fails, and the pipe is named
    expect(r.failed.length).toBeGreaterThan(0);
    expect(r.errors).toContainEqual(expect.objectContaining({ code: 'MV_ERR_STORAGE_FAILED', message: expect.stringContaining(`${pack}: cannot read`) }));
    expect(temps(target)).toEqual([]);
  });
});
