import { describe, it, expect, vi, onTestFinished } from 'vitest';
import { readFile, writeFile, readdir, stat, mkdir, open } from 'node:fs/promises';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from './archiver.js';
import { setFaults } from '../store/faults.js';
import { diskProblem } from '../repo/disk.js';
import { StreamArchiver } from './stream-archiver.js';
import { backupLogEntry } from './log-entry.js';
import { Restorer } from '../restore/restorer.js';
import { setXattr } from '../platform/fsx.js';
import type { Repository } from '../repo/repository.js';
import { encodeTree, nameBytes } from '../repo/tree.js';

const RECORDS = new URL('../../../../shared/data/records', import.meta.url).pathname;
const hasRecords = existsSync(join(RECORDS, 'MANIFEST.sha256'));

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** Asserts that no file in the repository contains any of `needles`. */
async function expectNoPlaintext(root: string, needles: string[]): Promise<void> {
  const files = await allFiles(root);
  expect(files.length).toBeGreaterThan(3);
  for (const f of files) {
    const b = await readFile(f);
    for (const n of needles) expect(b.includes(Buffer.from(n)), `${n} found in ${f}`).toBe(false);
  }
}

describe.skipIf(!hasRecords)('backup of the sample records', () => {
  it('restores every file byte-equal to MANIFEST.sha256 and leaves no plaintext in the repository', async () => {
    const t = await testRepo();
    const t0 = performance.now();
    const r = await new Archiver(t.repo).backup({ store: 'records', source: RECORDS, job: 'full' });
    const ms = performance.now() - t0;
    console.log(`backup: ${r.summary.files} files, ${(r.summary.bytes / 1e6).toFixed(1)} MB in ${ms.toFixed(0)} ms = ${(r.summary.bytes / 1e3 / ms).toFixed(0)} MB/s; stored ${(r.summary.storedBytes / 1e6).toFixed(1)} MB`);
    expect(r.partial).toBe(false);
    const target = join(await tempDir('mv-out-'), 'out');
    const res = await new Restorer(t.repo).restore({ snapshot: 'latest', store: 'records', paths: [], target, mode: 'new' });
    expect(res.failed).toEqual([]);
    expect(res.verified).toBe(r.summary.files);
    const manifest = (await readFile(join(RECORDS, 'MANIFEST.sha256'), 'utf8')).trim().split('\n');
    expect(manifest.length).toBeGreaterThan(300);
    for (const line of manifest) {
      const [hash, path] = [line.slice(0, 64), line.slice(66)];
      const got = createHash('sha256').update(await readFile(join(target, path))).digest('hex');
      expect(got, path).toBe(hash);
    }
    // a Synthea family name (also in file names) and DICOM strings from the sample data
    await expectNoPlaintext(t.store.root, ['Hodkiewicz', 'ISO_IR 100', 'Lemuel_Hodkiewicz', '"resourceType"']);
  });
});

describe('backup', () => {
  async function source(): Promise<string> {
    const dir = await tempDir('mv-src-');
    await mkdir(join(dir, 'notes'));
    for (let i = 0; i < 20; i++) await writeFile(join(dir, 'notes', `n${i}.txt`), `MARKER-PATIENT-ZEBRA-4711 note ${i} `.repeat(500));
    await writeFile(join(dir, 'big.bin'), randomBytes(12 * 1024 * 1024));
    return dir;
  }

  it('leaves no plaintext (generated marker) in the repository', async () => {
    const t = await testRepo();
    const src = await source();
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    await expectNoPlaintext(t.store.root, ['MARKER-PATIENT-ZEBRA-4711', 'notes', 'n1.txt', 'big.bin']);
  });

  it('incremental: unchanged files reuse chunks; a 1-byte change writes little', async () => {
    const t = await testRepo();
    const src = await source();
    const a = new Archiver(t.repo);
    const first = await a.backup({ store: 's', source: src, job: 'full' });
    const second = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect(second.summary.reused, JSON.stringify([second.summary, second.errors.slice(0, 2)])).toBe(21);
    expect(second.summary.newBytes).toBe(0);
    expect(second.written.filter((o) => o.kind === 'pack')).toEqual([]);
    // an unchanged folder costs nothing: the second run added no tree either
    expect(second.written.map((o) => o.kind)).toEqual(['snapshot']);
    const fh = await open(join(src, 'big.bin'), 'r+');
    await fh.write(Buffer.from([0x42]), 0, 1, 6 * 1024 * 1024);
    await fh.close();
    const third = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect(third.summary.reused).toBe(20);
    expect(third.summary.newBytes).toBeGreaterThan(0);
    expect(third.summary.newBytes).toBeLessThan(first.summary.newBytes / 3);
    const full = await a.backup({ store: 's', source: src, job: 'full' });
    expect(full.summary.reused).toBe(0);
    expect(full.summary.newBytes).toBe(0);
    expect((await t.repo.loadSnapshot(full.snapshot)).job).toBe('full');
  });

  it('a run with no parent snapshot of its store is full, whatever was asked; the next is incremental (files and dumps)', async () => {
    const t = await testRepo();
    const src = await source();
    const a = new Archiver(t.repo);
    const first = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect([first.job, (await t.repo.loadSnapshot(first.snapshot)).job]).toEqual(['full', 'full']);
    const other = await a.backup({ store: 'other', source: src, job: 'continuous' }); // another store's snapshot is no parent
    expect([other.job, (await t.repo.loadSnapshot(other.snapshot)).job]).toEqual(['full', 'full']);
    const second = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect([second.job, (await t.repo.loadSnapshot(second.snapshot)).job]).toEqual(['incremental', 'incremental']);
    const dump = (text: string) => ({ store: 'db', name: 'db.sql', source: 'test://db', stream: (async function* () { yield Buffer.from(text); })(), verify: async () => {}, job: 'incremental' as const });
    const d1 = await new StreamArchiver(t.repo).backup(dump('one'));
    const d2 = await new StreamArchiver(t.repo).backup(dump('two'));
    expect([d1.job, d2.job]).toEqual(['full', 'incremental']);
    expect((await t.repo.loadSnapshot(d1.snapshot)).job).toBe('full');
    expect(backupLogEntry({ site: 'x', store: 's', job: 'incremental', actor: { kind: 'user', id: 'tess' }, startedAt: 1, endedAt: 2, result: first }).job).toBe('full');
  });

  it('incremental: an extended attribute set on an unchanged file, or a folder, is recorded; an unchanged folder keeps its tree', async () => {
    const t = await testRepo();
    const src = await source();
    const a = new Archiver(t.repo);
    const first = await a.backup({ store: 's', source: src, job: 'full' });
    /** The node at `path` (a/b) of a snapshot's tree. */
    const nodeAt = async (repo: Repository, snapshot: string, path: string) => {
      let tree = (await repo.loadSnapshot(snapshot)).tree;
      const names = path.split('/');
      for (const [i, name] of names.entries()) {
        const n = (await repo.loadTree(tree)).find((x) => x.display === name)!;
        if (i === names.length - 1) return n;
        tree = n.subtree!;
      }
      throw new Error('empty path');
    };
    const v = (s: string) => Buffer.from(s).toString('base64url');
    setXattr(join(src, 'notes', 'n1.txt'), 'user.mv.note', Buffer.from('one'));
    const second = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect(second.summary.reused).toBe(20); // the attribute changed n1.txt's ctime: it is read again
    expect((await nodeAt(t.repo, second.snapshot, 'notes/n1.txt')).xattrs).toEqual([['user.mv.note', v('one')]]);
    expect((await nodeAt(t.repo, second.snapshot, 'notes/n2.txt')).xattrs).toBeUndefined();
    setXattr(join(src, 'notes', 'n1.txt'), 'user.mv.note', Buffer.from('two'));
    setXattr(join(src, 'notes'), 'user.mv.folder', Buffer.from('f'));
    const third = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect((await nodeAt(t.repo, third.snapshot, 'notes/n1.txt')).xattrs).toEqual([['user.mv.note', v('two')]]);
    expect((await nodeAt(t.repo, third.snapshot, 'notes')).xattrs).toEqual([['user.mv.folder', v('f')]]);
    // nothing changed since: the attributes come from the parent, and every tree is the parent's
    const fourth = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect((await nodeAt(t.repo, fourth.snapshot, 'notes/n1.txt')).xattrs).toEqual([['user.mv.note', v('two')]]);
    expect((await t.repo.loadSnapshot(fourth.snapshot)).tree).toBe((await t.repo.loadSnapshot(third.snapshot)).tree);
    expect((await t.repo.loadSnapshot(third.snapshot)).tree).not.toBe((await t.repo.loadSnapshot(first.snapshot)).tree);
  });

  it('a snapshot made before names were escaped: its names read escaped, and the next backup keeps its trees and reads no file', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-src-');
    const raw = ['a\nOK.txt', '\u001b]0;pwned\u0007b.txt', 'c\td\u007f'];
    await mkdir(join(src, raw[0]!));
    for (const n of raw) await writeFile(join(src, raw[0]!, n), n);
    const a = new Archiver(t.repo);
    const first = await a.backup({ store: 's', source: src, job: 'full' });
    // the same snapshot as the code before this fix wrote it: display strings raw
    const rawTree = async (id: string): Promise<string> => {
      const nodes = await Promise.all((await t.repo.loadTree(id)).map(async (n) => ({ ...n, display: nameBytes(n).toString('utf8'), ...(n.subtree ? { subtree: await rawTree(n.subtree) } : {}) })));
      return (await w.saveBlob('tree', encodeTree(nodes))).id;
    };
    const w = await t.repo.writer();
    const old = await t.repo.loadSnapshot(first.snapshot);
    const oldTree = await rawTree(old.tree);
    await w.flush();
    const oldHash = await w.saveSnapshot({ ...old, tree: oldTree, time: old.time + 1, parent: first.snapshot, job: 'incremental' });
    await w.release();
    const dir = (await t.repo.loadTree(oldTree))[0]!;
    expect(dir.display).toBe('a\\nOK.txt');
    expect((await t.repo.loadTree(dir.subtree!)).map((n) => n.display)).toEqual(['\\e]0;pwned\\x07b.txt', 'a\\nOK.txt', 'c\\td\\x7f']);
    const next = await a.backup({ store: 's', source: src, job: 'incremental' });
    expect((await t.repo.loadSnapshot(next.snapshot)).parent).toBe(oldHash);
    expect(next.summary).toMatchObject({ files: 3, reused: 3, newBytes: 0 });
    expect((await t.repo.loadSnapshot(next.snapshot)).tree).toBe(oldTree);
    expect(next.written.filter((x) => x.kind !== 'snapshot')).toEqual([]);
  });

  it('a disk that fills up and then refuses the lock\'s delete: the run fails with the pack\'s ENOSPC (disk-full), not the lock\'s error', async () => {
    const t = await testRepo();
    const src = await source();
    setFaults('action=enospc,match=/data/');
    onTestFinished(() => setFaults(undefined));
    // what ext4 does once the device under it is full: the journal aborts, the file system goes read-only
    vi.spyOn(t.store, 'delete').mockRejectedValue(Object.assign(new Error('EROFS: read-only file system, unlink'), { code: 'EROFS' }));
    const err = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' }).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(/data\/.*cannot write: ENOSPC/);
    expect(diskProblem(err)?.code).toBe('disk-full');
  });

  it('a repository whose disk went after it was opened (the daemon keeps it open) is not made again where it was: MV_ERR_NOT_FOUND, nothing written', async () => {
    const t = await testRepo();
    const src = await source();
    const a = new Archiver(t.repo);
    await a.backup({ store: 's', source: src, job: 'full' });
    await writeFile(join(src, 'new.bin'), randomBytes(2 * 1024 * 1024));
    renameSync(t.store.root, `${t.store.root}.away`); // unmounted: the disk path, a folder on the disk, is gone
    await expect(a.backup({ store: 's', source: src, job: 'incremental' })).rejects.toMatchObject({ code: 'MV_ERR_NOT_FOUND', message: expect.stringContaining('is the disk unmounted or unplugged?') });
    expect(existsSync(t.store.root)).toBe(false);
    mkdirSync(t.store.root); // the disk path is the mount point itself: an empty folder stays
    await expect(a.backup({ store: 's', source: src, job: 'incremental' })).rejects.toMatchObject({ code: 'MV_ERR_NOT_FOUND' });
    expect(readdirSync(t.store.root)).toEqual([]);
    expect(diskProblem(await a.backup({ store: 's', source: src, job: 'incremental' }).catch((e: unknown) => e))?.code).toBe('disk-missing');
  });

  it('reports unreadable files and marks the snapshot partial', async () => {
    if (process.getuid?.() === 0) return; // root reads everything
    const t = await testRepo();
    const src = await source();
    await writeFile(join(src, 'secret.txt'), 'x', { mode: 0o000 });
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(r.partial).toBe(true);
    expect(r.errors.map((e) => e.path)).toEqual(['secret.txt']);
    expect((await t.repo.loadSnapshot(r.snapshot)).partial).toBe(true);
    expect((await stat(join(src, 'secret.txt'))).size).toBe(1);
  });
});
