import { describe, it, expect, vi } from 'vitest';
import { writeFile, readFile, mkdir, symlink, link, utimes, chmod, lstat, readdir, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from '../backup/archiver.js';
import { Restorer } from './restorer.js';
import { cryptoPool } from '../crypto/pool.js';
import { Checker } from '../check/checker.js';
import { encodeTree, type TreeNode } from '../repo/tree.js';

const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s));
const bj = (...parts: Buffer[]) => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [b('/'), p])));

/** A tree with every awkward case; returns its root. */
async function awkwardTree(): Promise<string> {
  const root = await tempDir('mv-awk-');
  const r = b(root);
  await writeFile(bj(r, b([0x66, 0xff, 0x6f])), 'not utf-8 name');
  await writeFile(bj(r, b('caf\u00e9')), 'NFC');
  await writeFile(bj(r, b('cafe\u0301')), 'NFD');
  await writeFile(join(root, 'empty'), '');
  await mkdir(join(root, 'empty-dir'));
  await mkdir(join(root, 'a', 'b', 'c'), { recursive: true });
  await writeFile(join(root, 'a', 'b', 'c', 'deep.txt'), 'deep');
  await symlink('../outside/target', join(root, 'a', 'link-out'));
  await symlink('deep.txt', join(root, 'a', 'b', 'c', 'link-in'));
  await writeFile(join(root, 'big.bin'), randomBytes(20 * 1024 * 1024));
  await writeFile(join(root, 'ro.txt'), 'read only');
  await chmod(join(root, 'ro.txt'), 0o440);
  await chmod(join(root, 'a'), 0o750);
  await utimes(join(root, 'ro.txt'), 1234567890.123456, 1234567890.123456);
  await utimes(join(root, 'a', 'b'), 1000000000, 1000000000);
  return root;
}

/** Compares two trees: names as bytes, types, content, mode, mtime (µs), symlink targets. */
async function expectSameTree(a: Buffer, c: Buffer): Promise<void> {
  const names = (await readdir(a, { encoding: 'buffer' })).sort(Buffer.compare);
  expect((await readdir(c, { encoding: 'buffer' })).sort(Buffer.compare).map((n) => n.toString('hex'))).toEqual(names.map((n) => n.toString('hex')));
  for (const n of names) {
    const [pa, pc] = [bj(a, n), bj(c, n)];
    const [sa, sc] = [await lstat(pa, { bigint: true }), await lstat(pc, { bigint: true })];
    expect(sc.mode, pc.toString()).toBe(sa.mode);
    if (sa.isSymbolicLink()) expect(await readlink(pc, { encoding: 'buffer' })).toEqual(await readlink(pa, { encoding: 'buffer' }));
    else {
      const d = sa.mtimeNs - sc.mtimeNs;
      expect(d < 0n ? -d : d, `mtime of ${pc}`).toBeLessThan(2000n);
    }
    if (sa.isDirectory()) await expectSameTree(pa, pc);
    else if (sa.isFile()) expect((await readFile(pc)).equals(await readFile(pa)), pc.toString()).toBe(true);
  }
}

describe('Restorer', () => {
  it('progress: files and bytes reach their totals with the last file, not before (empty files last, hard links)', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-prog-');
    for (let i = 0; i < 4; i++) await writeFile(join(src, `a${i}.bin`), randomBytes(100_000));
    await link(join(src, 'a0.bin'), join(src, 'a0-again.bin'));
    for (let i = 0; i < 3; i++) await writeFile(join(src, `z${i}.txt`), '');
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const seen: { files: number; bytes: number; totalFiles: number; totalBytes: number }[] = [];
    await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target: join(src, 'out'), mode: 'new', onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)).toEqual({ files: 8, bytes: 400_000, totalFiles: 8, totalBytes: 400_000 });
    expect(seen).toHaveLength(8); // every file, the second name of the linked one too
    expect(seen.slice(0, -1).every((p) => p.files < p.totalFiles)).toBe(true);
  });

  it('round-trips awkward names, NFC/NFD twins, empty files and folders, symlinks, big files, mode and mtime', async () => {
    const t = await testRepo();
    const src = await awkwardTree();
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(r.partial).toBe(false);
    expect(r.summary.files).toBe(7);
    const target = join(await tempDir('mv-out-'), 'out');
    const progress: number[] = [];
    const inThreads = vi.spyOn(cryptoPool(), 'restoreFile');
    const res = await new Restorer(t.repo).restore({ snapshot: 'latest', store: 's', paths: [''], target, mode: 'new', onProgress: (p) => progress.push(p.files) });
    expect(res.errors).toEqual([]);
    expect(res.verified).toBe(7);
    // from a local disk every file was written whole in the pool's threads, none again on this one
    expect(await Promise.all(inThreads.mock.results.map((x) => x.value))).toEqual(Array.from({ length: 7 }, () => ({ bytes: expect.any(Number), skipped: [] })));
    inThreads.mockRestore();
    expect(progress.at(-1)).toBe(7);
    await expectSameTree(b(src), b(target));
    // one path only
    const part = join(await tempDir('mv-out-'), 'part');
    const one = await new Restorer(t.repo).restore({ snapshot: r.snapshot.slice(0, 10), paths: ['a/b'], target: part, mode: 'new' });
    expect(one.files).toBe(1);
    expect(await readFile(join(part, 'a', 'b', 'c', 'deep.txt'), 'utf8')).toBe('deep');
    expect(existsSync(join(part, 'big.bin'))).toBe(false);
  });

  it('the folders above a selected path get their snapshot mode and mtime (made 0700 and left so before); folders already there are left as they are', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    await mkdir(join(src, 'p', 'q'), { recursive: true });
    await writeFile(join(src, 'p', 'q', 'one.txt'), '1');
    await writeFile(join(src, 'p', 'q', 'two.txt'), '2');
    await chmod(join(src, 'p'), 0o750);
    await chmod(join(src, 'p', 'q'), 0o755);
    await utimes(join(src, 'p', 'q'), 1_000_000, 1_000_000);
    await utimes(join(src, 'p'), 2_000_000, 2_000_000);
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tempDir('mv-out-');
    await mkdir(join(target, 'p'), { mode: 0o711 });
    const res = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: ['p/q/one.txt', 'p/q/two.txt'], target, mode: 'new' });
    expect(res.errors).toEqual([]);
    const q = await lstat(join(target, 'p', 'q'));
    expect([q.mode & 0o7777, q.mtimeMs]).toEqual([0o755, 1_000_000_000]);
    expect((await lstat(join(target, 'p'))).mode & 0o7777).toBe(0o711); // there already: not changed
    const fresh = await tempDir('mv-out-');
    await new Restorer(t.repo).restore({ snapshot: 'latest', paths: ['p/q/one.txt'], target: fresh, mode: 'new' });
    const p = await lstat(join(fresh, 'p'));
    expect([p.mode & 0o7777, p.mtimeMs]).toEqual([0o750, 2_000_000_000]);
  });

  it('a name that is not UTF-8 is restored by the name it is shown as (caf\uFFFD.txt), as a command line can give it; two such names showing the same are refused', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    await mkdir(join(src, 'd'));
    await writeFile(bj(b(join(src, 'd')), b([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])), 'latin-1 name');
    await mkdir(bj(b(src), b([0x6e, 0xff])));
    await writeFile(bj(b(src), b([0x6e, 0xff]), b('in.txt')), 'in a folder not UTF-8');
    await writeFile(bj(b(src), b([0x78, 0xe9])), '1');
    await writeFile(bj(b(src), b([0x78, 0xe8])), '2');
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tempDir('mv-out-');
    const res = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: ['d/caf\uFFFD.txt', 'n\uFFFD/in.txt'], target, mode: 'new' });
    expect([res.files, res.errors]).toEqual([2, []]);
    expect(await readFile(bj(b(join(target, 'd')), b([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])), 'utf8')).toBe('latin-1 name');
    expect(await readFile(bj(b(target), b([0x6e, 0xff]), b('in.txt')), 'utf8')).toBe('in a folder not UTF-8');
    await expect(new Restorer(t.repo).restore({ snapshot: 'latest', paths: ['x\uFFFD'], target, mode: 'new' })).rejects.toMatchObject({ code: 'MV_ERR_CONFLICT' });
  });

  it("mode 'new' refuses to overwrite; 'overwrite' replaces", async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    await writeFile(join(src, 'f.txt'), 'from backup');
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const target = await tempDir('mv-out-');
    await writeFile(join(target, 'f.txt'), 'local edit');
    const refused = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target, mode: 'new' });
    expect(refused.failed).toEqual(['f.txt']);
    expect(await readFile(join(target, 'f.txt'), 'utf8')).toBe('local edit');
    const done = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target, mode: 'overwrite' });
    expect(done.failed).toEqual([]);
    expect(await readFile(join(target, 'f.txt'), 'utf8')).toBe('from backup');
    expect((await readdir(target)).sort()).toEqual(['f.txt']);
  });

  it("refuses crafted names ('..', 'a/b', absolute) and never writes outside the target", async () => {
    const t = await testRepo();
    const w = await t.repo.writer();
    const chunk = await w.saveBlob('data', Buffer.from('evil'));
    const node = (name: string): TreeNode => ({ name: b(name).toString('base64url'), display: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0', ctime: '0', size: 4, inode: '1', dev: '1', links: 1, content: [chunk.id] });
    const tree = await w.saveBlob('tree', encodeTree([node('..'), node('a/b'), node('/tmp/mv-evil-abs'), node('ok.txt'), node('')]));
    const snap = await w.saveSnapshot({ v: 1, time: Date.now(), store: 's', job: 'full', tree: tree.id, host: 'h', source: '/x', partial: false, summary: { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, newBytes: 0, storedBytes: 0, reused: 0, changed: 0, errors: 0 }, errors: [], tags: [], actor: { kind: 'agent', id: 'test' } });
    await w.release();
    const base = await tempDir('mv-out-');
    const target = join(base, 'inner', 'target');
    const res = await new Restorer(t.repo).restore({ snapshot: snap, paths: [], target, mode: 'overwrite' });
    expect(res.failed.sort()).toEqual(['', '..', '/tmp/mv-evil-abs', 'a/b'].sort());
    expect(await readdir(target)).toEqual(['ok.txt']);
    expect(await readdir(join(base, 'inner'))).toEqual(['target']);
    expect(existsSync('/tmp/mv-evil-abs')).toBe(false);
  });

  it('never follows a symlink in the target out of it', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    await mkdir(join(src, 'd'));
    await writeFile(join(src, 'd', 'f.txt'), 'data');
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const outside = await tempDir('mv-outside-');
    const target = await tempDir('mv-out-');
    await symlink(outside, join(target, 'd'));
    const refused = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target, mode: 'new' });
    expect(refused.failed).toEqual(['d']);
    const replaced = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target, mode: 'overwrite' });
    expect(replaced.failed).toEqual([]);
    expect(await readdir(outside)).toEqual([]);
    expect((await lstat(join(target, 'd'))).isDirectory()).toBe(true);
  });

  it('a corrupted pack byte: restore names the file and writes no bad bytes; check --read-data names pack, snapshot and file', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    await writeFile(join(src, 'good.txt'), 'fine');
    await writeFile(join(src, 'scan.dcm'), randomBytes(3 * 1024 * 1024));
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const tree = await t.repo.loadTree((await t.repo.loadSnapshot(r.snapshot)).tree);
    const scan = tree.find((n) => n.display === 'scan.dcm')!;
    const e = (await t.repo.blobEntry(scan.content![1]!))!;
    const file = join(t.store.root, 'data', e.pack.slice(0, 2), e.pack);
    const bytes = await readFile(file);
    bytes[e.offset + 100]! ^= 0x20;
    await rm(file, { force: true });
    await writeFile(file, bytes);

    const structural = await new Checker(t.repo).check();
    expect(structural.ok).toBe(true); // sizes and references are intact
    const check = await new Checker(t.repo).check({ readData: true });
    expect(check.ok).toBe(false);
    expect(check.damaged.map((d) => `${d.kind} ${d.name}`)).toEqual([`pack ${e.pack}`]);
    expect(check.affected.map((a) => `${a.snapshot} ${a.path}`)).toEqual([`${r.snapshot} scan.dcm`]);

    const target = await tempDir('mv-out-');
    await t.reopen();
    const res = await new Restorer(t.repo).restore({ snapshot: 'latest', paths: [], target, mode: 'new' });
    expect(res.failed).toEqual(['scan.dcm']);
    expect(res.errors[0]!.code).toBe('MV_ERR_DATA_CORRUPT');
    expect(await readdir(target)).toEqual(['good.txt']);
  });
});

describe('a restore\'s temporary files', () => {
  it('are never backed up (a backup running beside an in-place restore)', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-tmpskip-');
    await mkdir(join(src, 'fhir'));
    await writeFile(join(src, 'fhir', 'a.json'), 'a');
    await writeFile(join(src, 'fhir', '.mv-restore-a34248d6749b510d.tmp'), 'half-written');
    await writeFile(join(src, 'fhir', '.mv-restore-notes.tmp'), 'a user file of a similar name');
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(r.summary.errors).toBe(0);
    const s = await t.repo.loadSnapshot(r.snapshot);
    const fhir = (await t.repo.loadTree(s.tree)).find((n) => n.display === 'fhir')!;
    expect((await t.repo.loadTree(fhir.subtree!)).map((n) => n.display).sort()).toEqual(['.mv-restore-notes.tmp', 'a.json']);
  });
});
