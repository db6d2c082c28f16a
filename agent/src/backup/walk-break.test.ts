/**
 * Attempts to make the walk cache (walk-cache.ts) lose a change. The oracle for every case: the
 * incremental that may use the cache makes the tree a full backup of the same source makes (every
 * file read again, through a handle without a cache folder), restores byte for byte and stat for
 * stat, and the repository checks clean with --read-data.
 */
import { describe, it, expect, onTestFinished } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, chown, copyFile, link, lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testRepo, tempDir, type TestRepo } from '../repo/testing.js';
import { Repository } from '../repo/repository.js';
import { DirStore } from '../store/dir-store.js';
import { Archiver } from './archiver.js';
import { Restorer } from '../restore/restorer.js';
import { Checker } from '../check/checker.js';
import { Pruner } from '../prune/pruner.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { getXattrs, mknod, setXattr } from '../platform/fsx.js';
import { sync } from '../platform/long-paths.js';

const fixed = new Date('2024-03-01T10:00:00Z');

async function source(): Promise<string> {
  const dir = await tempDir('mv-wbreak-');
  for (const d of ['a', 'a/b', 'a/b/deep', 'a/b/deep/er', 'c', 'empty', 'links']) await mkdir(join(dir, d));
  for (const d of ['a', 'a/b', 'a/b/deep', 'a/b/deep/er', 'c']) for (let i = 0; i < 4; i++) await writeFile(join(dir, d, `f${i}.json`), `{"n":${i},"d":"${d}"}`.repeat(60 + i));
  await writeFile(join(dir, 'a', 'b', 'big.bin'), randomBytes(1 << 20));
  await writeFile(join(dir, 'c', 'same-a'), 'A'.repeat(500));
  await writeFile(join(dir, 'c', 'same-b'), 'B'.repeat(500));
  await symlink('../a/f1.json', join(dir, 'links', 'l1'));
  await writeFile(join(dir, 'links', 'target'), 'hard link target');
  await link(join(dir, 'links', 'target'), join(dir, 'links', 'hard1'));
  await setXattr(join(dir, 'c', 'f0.json'), 'user.kind', Buffer.from('lab'));
  return dir;
}

/** What a restore must give back of an entry (folder mtimes too; hard links as the other paths of the inode). */
interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: bigint;
  size: number;
  sha?: string;
  target?: string;
  xattrs: string;
  peers?: string;
  rdev?: bigint;
}

async function describeTree(root: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const inodes = new Map<bigint, string[]>();
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const full = join(root, p);
      const st = await lstat(full, { bigint: true });
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      const e: Entry = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: type === 'dir' ? 0 : Number(st.size), xattrs: type === 'symlink' ? '' : JSON.stringify(getXattrs(full).map(([n, v]) => [n, v.toString('hex')]).sort()) };
      if (type !== 'symlink') e.mtime = st.mtimeNs;
      if (type === 'file') {
        e.sha = createHash('sha256').update(await readFile(full)).digest('hex');
        if (st.nlink > 1n) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), p]);
      }
      if (type === 'symlink') e.target = await readlink(full);
      if (type === 'other') e.rdev = st.rdev;
      out.set(p, e);
      if (type === 'dir') await walk(p);
    }
  };
  await walk('');
  for (const paths of inodes.values()) for (const p of paths) out.get(p)!.peers = paths.filter((q) => q !== p).sort().join(',');
  return out;
}

/** A second handle on a repository without a cache folder: never reads or writes a walk cache. */
const uncached = (store: DirStore, localKey: Buffer) => Repository.open(store, { localKey }, { label: store.root });

/** Counts the trees a backup loads from the repository (0: the walk cache was used throughout). */
function countTreeLoads(repo: Repository): { n: number } {
  const c = { n: 0 };
  const load = repo.loadTree.bind(repo);
  repo.loadTree = (id) => (c.n++, load(id));
  return c;
}

/**
 * The oracle: snapshot `snapshot` of `repo` has the tree a full backup of `src` (through `plain`,
 * store 'oracle') has, and (with `restore`) restores to what `src` holds.
 */
async function verify(repo: Repository, plain: Repository, snapshot: string, src: string, label: string, restore = true): Promise<void> {
  const oracle = await new Archiver(plain).backup({ store: 'oracle', source: src, job: 'full' });
  expect((await repo.loadSnapshot(snapshot)).tree, label).toBe((await plain.loadSnapshot(oracle.snapshot)).tree);
  if (!restore) return;
  const target = join(await tempDir('mv-wbreak-out-'), 'out');
  const res = await new Restorer(repo).restore({ snapshot, paths: [], target, mode: 'new' });
  expect(res.failed, label).toEqual([]);
  const want = await describeTree(src);
  const got = await describeTree(target);
  expect([...got.keys()], label).toEqual([...want.keys()]);
  for (const [p, e] of want) expect(got.get(p), `${label}: ${p}`).toEqual(e);
}

async function checkClean(repo: Repository): Promise<void> {
  const c = await new Checker(repo).check({ readData: true });
  expect(c.damaged).toEqual([]);
  expect(c.affected).toEqual([]);
  expect(c.ok).toBe(true);
}

interface Site {
  t: TestRepo;
  src: string;
  plain: Repository;
}

async function site(): Promise<Site> {
  const t = await testRepo();
  const plain = await uncached(t.store, t.localKey);
  onTestFinished(() => plain.close());
  return { t, src: await source(), plain };
}

/** One incremental of store 's' that may use the walk cache, clean and verified; returns the trees it loaded. */
async function backupAndCompare(s: Site, label: string, restore = true): Promise<number> {
  const loads = countTreeLoads(s.t.repo);
  const r = await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental' });
  const loaded = loads.n;
  expect(r.errors, label).toEqual([]);
  await verify(s.t.repo, s.plain, r.snapshot, s.src, label, restore);
  return loaded;
}

/** Rewrites a file with other bytes of the same length and puts its atime and mtime back (touch -r). */
async function sameSizeSameMtime(file: string): Promise<void> {
  const st = await lstat(file);
  const b = await readFile(file);
  b[0] = b[0] === 0x41 ? 0x42 : 0x41;
  b[b.length - 1]! ^= 1;
  await writeFile(file, b);
  await utimes(file, st.atime, st.mtime);
}

/** removexattr(2) (the addon has no binding for it). */
function removeXattr(path: string, name: string): void {
  const r = spawnSync('python3', ['-c', 'import os,sys; os.removexattr(sys.argv[1], sys.argv[2], follow_symlinks=False)', path, name], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

describe('walk cache under attack', () => {
  it('misses no change in a sequence of edits, each followed by a cached incremental', async () => {
    const s = await site();
    const { src } = s;
    const p = (...parts: string[]) => join(src, ...parts);
    await backupAndCompare(s, 'first', false);
    expect(await backupAndCompare(s, 'nothing changed')).toBe(0);
    const edits: [string, () => unknown][] = [
      ['content changed, size and mtime kept', () => sameSizeSameMtime(p('a', 'f2.json'))],
      ['4 levels deep, parents untouched', () => sameSizeSameMtime(p('a', 'b', 'deep', 'er', 'f3.json'))],
      ['two files swapped by rename', async () => {
        await rename(p('c', 'same-a'), p('c', 'tmp'));
        await rename(p('c', 'same-b'), p('c', 'same-a'));
        await rename(p('c', 'tmp'), p('c', 'same-b'));
      }],
      ['file replaced by a folder', async () => {
        await rm(p('c', 'f1.json'));
        await mkdir(p('c', 'f1.json'));
        await writeFile(p('c', 'f1.json', 'inner'), 'inner');
      }],
      ['folder replaced by a file again', async () => {
        await rm(p('c', 'f1.json'), { recursive: true });
        await writeFile(p('c', 'f1.json'), `{"n":1,"d":"c"}`.repeat(61));
      }],
      ['symlink retargeted (same length)', async () => {
        await unlink(p('links', 'l1'));
        await symlink('../a/f2.json', p('links', 'l1'));
      }],
      ['chmod of a file', () => chmod(p('a', 'b', 'f0.json'), 0o600)],
      ['chown of a file', () => chown(p('a', 'b', 'deep', 'f1.json'), 1234, 4321)],
      ['chmod of a folder', () => chmod(p('a', 'b', 'deep'), 0o750)],
      ['chown of a folder', () => chown(p('a', 'b', 'deep', 'er'), 1234, 4321)],
      ['xattr added to a file', () => setXattr(p('a', 'f3.json'), 'user.patient', Buffer.from('4711'))],
      ['xattr changed (same length)', () => setXattr(p('a', 'f3.json'), 'user.patient', Buffer.from('4712'))],
      ['xattr removed from a file', () => removeXattr(p('c', 'f0.json'), 'user.kind')],
      ['xattr added to a folder', () => setXattr(p('a', 'b', 'deep', 'er'), 'user.ward', Buffer.from('3'))],
      ['xattr changed on a folder (same length)', () => setXattr(p('a', 'b', 'deep', 'er'), 'user.ward', Buffer.from('4'))],
      ['xattr removed from a folder', () => removeXattr(p('a', 'b', 'deep', 'er'), 'user.ward')],
      ['hard link added in another folder', () => link(p('a', 'f0.json'), p('c', 'hard-of-a-f0'))],
      ['hard link removed', () => unlink(p('links', 'hard1'))],
      ['content changed through a hard link', () => sameSizeSameMtime(p('c', 'hard-of-a-f0'))],
      ['FIFO added', () => mknod(p('c', 'pipe'), 0o010640, 0n)],
      ['device node added', () => mknod(p('c', 'dev'), 0o020600, 0x0103n)],
      ['device node replaced by another of the same name (another device number)', async () => {
        await unlink(p('c', 'dev'));
        mknod(p('c', 'dev'), 0o020600, 0x0105n);
      }],
      ['file moved between two folders, their times put back', async () => {
        const [from, to] = [await lstat(p('a', 'b')), await lstat(p('c'))];
        await rename(p('a', 'b', 'f3.json'), p('c', 'moved.json'));
        await utimes(p('a', 'b'), from.atime, from.mtime);
        await utimes(p('c'), to.atime, to.mtime);
      }],
      ['subfolder renamed', () => rename(p('a', 'b', 'deep'), p('a', 'b', 'deeper'))],
      ['two folders swapped', async () => {
        await rename(p('c'), p('tmp'));
        await rename(p('empty'), p('c'));
        await rename(p('tmp'), p('empty'));
      }],
      ['new empty subfolder', () => mkdir(p('a', 'b', 'deeper', 'new-empty'))],
      ['file deleted and another made in its place with its times', async () => {
        const f = p('a', 'b', 'f1.json');
        const st = await lstat(f);
        const b = await readFile(f);
        b[3]! ^= 1;
        await unlink(f);
        await writeFile(f, b);
        await utimes(f, st.atime, st.mtime);
      }],
      ['times set to a fixed date, content kept', () => utimes(p('a', 'b', 'deeper', 'f0.json'), fixed, fixed)],
      ['content changed and the folder times put back too', async () => {
        await sameSizeSameMtime(p('a', 'b', 'deeper', 'er', 'f2.json'));
        await utimes(p('a', 'b', 'deeper', 'er'), fixed, fixed);
      }],
      ['rewritten in place (truncated, same bytes but one), mtime put back', async () => {
        const f = p('a', 'b', 'big.bin');
        const st = await lstat(f);
        const b = await readFile(f);
        b[1 << 19]! ^= 0xff;
        await truncate(f, 0);
        await writeFile(f, b, { flag: 'r+' });
        await utimes(f, st.atime, st.mtime);
      }],
    ];
    for (const [label, edit] of edits) {
      await edit();
      await backupAndCompare(s, label);
    }
    expect(await backupAndCompare(s, 'nothing changed at the end')).toBe(0);
    await checkClean(s.t.repo);
  }, 60_000);

  it('a cache file deleted, truncated, bit-flipped, from another store or repository, or an older copy, misses nothing', async () => {
    const s = await site();
    const other = await site();
    await backupAndCompare(s, 'first', false);
    await new Archiver(s.t.repo).backup({ store: 'another', source: s.src, job: 'incremental' });
    await new Archiver(other.t.repo).backup({ store: 's', source: s.src, job: 'incremental' });
    const file = (t: TestRepo, store: string) => join(t.cacheDir, `${t.repo.id}.walk`, createHash('sha256').update(store).digest('hex'));
    const mine = file(s.t, 's');
    const old = await readFile(mine);
    const tamper: [string, () => Promise<unknown>][] = [
      ['deleted', () => rm(mine)],
      ['truncated', async () => truncate(mine, Math.floor((await readFile(mine)).length / 2))],
      ['bit-flipped', async () => {
        const b = await readFile(mine);
        b[Math.floor(b.length / 2)]! ^= 4;
        await writeFile(mine, b);
      }],
      ['copied from another store', () => copyFile(file(s.t, 'another'), mine)],
      ['copied from another repository', () => copyFile(file(other.t, 's'), mine)],
      ['an older copy', () => writeFile(mine, old)],
      ['an empty file', () => writeFile(mine, '')],
    ];
    let n = 0;
    for (const [label, spoil] of tamper) {
      await sameSizeSameMtime(join(s.src, 'a', 'b', 'deep', `f${n++ % 4}.json`));
      await spoil();
      expect(await backupAndCompare(s, `cache ${label}`, false)).toBeGreaterThan(5); // not used
      await sameSizeSameMtime(join(s.src, 'c', 'f2.json'));
      await backupAndCompare(s, `after cache ${label}`, false);
    }
    await checkClean(s.t.repo);
  }, 60_000);

  it('forget and prune between runs, an older cache copy put back, misses nothing and references no missing chunk', async () => {
    const s = await site();
    const file = join(s.t.cacheDir, `${s.t.repo.id}.walk`, createHash('sha256').update('s').digest('hex'));
    await backupAndCompare(s, 'first', false);
    const c1 = await readFile(file);
    const s1 = (await s.t.repo.snapshots()).filter((x) => x.store === 's').map((x) => x.hash);
    // S2: new data only S2 references; then S2 and the oracle's snapshots (same chunks) forgotten and pruned
    await writeFile(join(s.src, 'c', 'only-in-s2.bin'), randomBytes(600_000));
    await backupAndCompare(s, 'second', false);
    await rm(join(s.src, 'c', 'only-in-s2.bin'));
    for (const x of await s.t.repo.snapshots()) if (x.store === 'oracle' || !s1.includes(x.hash)) await s.t.store.delete('snapshot', x.hash);
    const pr = await new Pruner(s.t.repo).run({ policy: {}, prune: true, dryRun: false });
    expect(pr.packsDeleted + pr.packsRepacked).toBeGreaterThan(0);
    await writeFile(file, c1);
    await backupAndCompare(s, 'after forget + prune, S1 cache back');
    await checkClean(s.t.repo);
    // forget without prune: a cache right for the snapshot that is the parent again may be used
    const c3 = await readFile(file);
    const s3 = (await s.t.repo.snapshots()).filter((x) => x.store === 's').map((x) => x.hash);
    await sameSizeSameMtime(join(s.src, 'a', 'f1.json'));
    await backupAndCompare(s, 'fourth', false);
    for (const x of await s.t.repo.snapshots()) if (x.store === 's' && !s3.includes(x.hash)) await s.t.store.delete('snapshot', x.hash);
    await writeFile(file, c3);
    await backupAndCompare(s, 'after forget, S3 cache back');
    await checkClean(s.t.repo);
  }, 60_000);

  it('the store pointed at another folder (a copy with its times, a subfolder of it, the first again) misses nothing', async () => {
    const s = await site();
    const first = s.src;
    await backupAndCompare(s, 'first', false);
    const copy = await tempDir('mv-wbreak-copy-');
    execFileSync('cp', ['-a', `${first}/.`, copy]);
    for (const [label, src] of [['a copy with its times', copy], ['a subfolder of it', join(copy, 'a')], ['the first folder again', first]]) {
      s.src = src!;
      await backupAndCompare(s, label!, false);
    }
  });

  it('a cloned disk (same repository id, so the same cache files) used in turn with the original misses nothing', async () => {
    const s = await site();
    await backupAndCompare(s, 'disk 1 first', false);
    const clone = new DirStore(join(s.t.dir, 'clone'));
    execFileSync('cp', ['-a', s.t.store.root, clone.root]);
    let n = 0;
    for (const store of [clone, s.t.store, clone, clone, s.t.store]) {
      await s.t.repo.close();
      const repo = await Repository.open(store, { localKey: s.t.localKey }, { cacheDir: s.t.cacheDir, label: store.root });
      const plain = await uncached(store, s.t.localKey);
      try {
        await sameSizeSameMtime(join(s.src, 'a', 'b', 'deep', `f${n++ % 4}.json`));
        const loads = await backupAndCompare({ t: { ...s.t, repo }, src: s.src, plain }, `run ${n} on ${store === clone ? 'the clone' : 'the original'}`, false);
        if (n === 1 || n === 4) expect(loads).toBeLessThanOrEqual(4); // the cache of the same snapshot was used: the changed folder and those above it
        await checkClean(repo);
      } finally {
        await plain.close();
        s.t.repo = repo;
      }
    }
  }, 60_000);

  it('a catalog deleted or rebuilt between runs misses nothing', async () => {
    const s = await site();
    await backupAndCompare(s, 'first', false);
    await s.t.repo.close();
    await rm(join(s.t.cacheDir, s.t.repo.id), { recursive: true, force: true });
    await s.t.reopen();
    await sameSizeSameMtime(join(s.src, 'a', 'b', 'f2.json'));
    await backupAndCompare(s, 'catalog deleted');
    await s.t.repo.rebuildCatalog();
    await sameSizeSameMtime(join(s.src, 'a', 'b', 'f3.json'));
    await backupAndCompare(s, 'catalog rebuilt');
    await checkClean(s.t.repo);
  }, 60_000);

  it('a parent snapshot with an unreadable file: the next runs miss nothing', async () => {
    const s = await site();
    const locked = join(s.src, 'a', 'b', 'deep', 'f1.json');
    const open = sync.open;
    try {
      await backupAndCompare(s, 'first', false);
      await sameSizeSameMtime(locked);
      await sameSizeSameMtime(join(s.src, 'c', 'f3.json'));
      sync.open = (path, flags, mode) => {
        if (path.toString() === locked) throw Object.assign(new Error(`EACCES: permission denied, open '${locked}'`), { code: 'EACCES', errno: -13, syscall: 'open' });
        return open(path, flags, mode);
      };
      const r = await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental' });
      sync.open = open;
      expect(r.errors.map((e) => e.path)).toEqual(['a/b/deep/f1.json']);
      await backupAndCompare(s, 'readable again, nothing else changed');
      await sameSizeSameMtime(join(s.src, 'a', 'b', 'deep', 'f2.json'));
      await backupAndCompare(s, 'then a change beside it');
    } finally {
      sync.open = open;
    }
  }, 60_000);

  it('a file changed while the backup reads it is not lost by the next cached run', async () => {
    const s = await site();
    const big = join(s.src, 'a', 'b', 'deep', 'growing.bin');
    await writeFile(big, randomBytes(8 << 20));
    await backupAndCompare(s, 'first', false);
    await sameSizeSameMtime(join(s.src, 'a', 'f0.json'));
    // one write to the big file while the run is under way (it is read again, or not yet read)
    let poke: Promise<void> | undefined;
    const r = await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental', onProgress: () => void (poke ??= sameSizeSameMtime(big)) });
    await poke;
    expect(r.partial).toBe(false);
    await backupAndCompare(s, 'after a change during the run');
  }, 60_000);

  it('an attribute set while the file is read is not lost by the next runs', async () => {
    const s = await site();
    const f = join(s.src, 'c', 'f0.json');
    const open = sync.open;
    try {
      await backupAndCompare(s, 'first', false);
      await sameSizeSameMtime(f); // changed, so the walk reads it
      sync.open = (p, flags, mode) => {
        if (p.toString() === f) {
          sync.open = open;
          setXattr(f, 'user.kind', Buffer.from('LAB'));
        }
        return open(p, flags, mode);
      };
      await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental' });
      sync.open = open;
      await backupAndCompare(s, 'next run, nothing changed since');
    } finally {
      sync.open = open;
    }
  });

  it('a file deleted just after its content was read is simply gone, as one deleted before (the run is not partial)', async () => {
    const s = await site();
    s.src = await tempDir('mv-wbreak-one-'); // one file: the only progress report is its own, after its read
    const f = join(s.src, 'chart.json');
    await writeFile(f, 'v1');
    await backupAndCompare(s, 'first', false);
    await writeFile(f, 'v2');
    const r = await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental', onProgress: () => rmSync(f) });
    expect(r.errors).toEqual([]);
    expect(r.summary.files).toBe(1);
    await backupAndCompare(s, 'next run');
  });

  it('a file that vanishes as it is opened (its folder moved away and back) is not missing from the next runs', async () => {
    const s = await site();
    const q = join(s.src, 'a', 'b', 'deep');
    const victim = join(q, 'f2.json');
    const open = sync.open;
    try {
      await backupAndCompare(s, 'first', false);
      await sameSizeSameMtime(victim);
      sync.open = (p, flags, mode) => {
        if (p.toString() !== victim) return open(p, flags, mode);
        renameSync(q, `${q}.away`);
        try {
          return open(p, flags, mode);
        } finally {
          renameSync(`${q}.away`, q);
        }
      };
      const r = await new Archiver(s.t.repo).backup({ store: 's', source: s.src, job: 'incremental' });
      sync.open = open;
      expect(r.errors).toEqual([]); // gone for that run, as a deleted file is
      await backupAndCompare(s, 'next run, nothing changed since');
      await checkClean(s.t.repo);
    } finally {
      sync.open = open;
    }
  }, 60_000);
});

const root = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(root, 'agent', 'dist', 'main.js');
// protocol's package.json points at its .ts sources; until it points at dist, load them with tsx (as cli.test)
const nodeArgs = (JSON.parse(readFileSync(join(root, 'protocol', 'package.json'), 'utf8')).exports['.'].default as string).endsWith('.ts') ? ['--import', 'tsx'] : [];

describe('walk cache under attack, through the built CLI', () => {
  it('two disks, one missing a run; a backup SIGKILLed mid-run; one failing as it commits; --full after cached runs: each disk misses nothing', async () => {
    const dir = await tempDir('mv-wbreak-cli-');
    const src = await source();
    const disks = [join(dir, 'disk1'), join(dir, 'disk2')];
    const config = join(dir, 'agent.toml');
    const { publicKey } = await generateRecoveryKeyPair();
    await writeFile(config, [`site = "clinic-a"`, `state_dir = "${dir}/state"`, `key_file = "${dir}/local.key"`, `recovery_public_key = "${publicKey}"`, ...disks.flatMap((d) => ['[[disks]]', `path = "${d}"`]), '[[stores]]', 'name = "s"', 'type = "files"', `path = "${src}"`].join('\n'));
    const args = (...a: string[]) => [...nodeArgs, main, '--config', config, '--json', ...a];
    // small packs, so the run to be killed writes some early
    const env = { ...process.env, MEDVAULT_PACK_TARGET: String(1 << 20) };
    const cli = (...a: string[]) => {
      const r = spawnSync(process.execPath, args(...a), { cwd: root, encoding: 'utf8', env });
      return { code: r.status, out: r.stdout + r.stderr };
    };
    /** Each disk's latest snapshot of 's' is verified, each repository checked clean. */
    const verifyDisks = async (label: string, restore: boolean) => {
      const localKey = readFileSync(join(dir, 'local.key'));
      for (const d of disks) {
        const store = new DirStore(d);
        const repo = await Repository.open(store, { localKey }, { cacheDir: join(dir, 'state', 'cache'), label: d });
        const plain = await uncached(store, localKey);
        try {
          const latest = (await repo.snapshots()).filter((x) => x.store === 's').sort((a, b) => a.time - b.time).pop()!;
          await verify(repo, plain, latest.hash, src, `${label}: ${d}`, restore);
          await checkClean(repo);
        } finally {
          await plain.close();
          await repo.close();
        }
      }
    };
    expect(cli('init').code).toBe(0);
    expect(cli('backup', 's').code).toBe(0);
    // disk 2 is unplugged for one run: each disk keeps its own parent and must use only its own cache
    await sameSizeSameMtime(join(src, 'a', 'b', 'deep', 'f0.json'));
    renameSync(disks[1]!, `${disks[1]}.away`);
    expect(cli('backup', 's').code).not.toBe(0);
    renameSync(`${disks[1]}.away`, disks[1]!);
    await sameSizeSameMtime(join(src, 'a', 'b', 'deep', 'er', 'f0.json'));
    const both = cli('backup', 's');
    expect(both.code, both.out).toBe(0);
    await verifyDisks('disk 2 after missing a run', false);
    // killed while it writes the new files' packs to disk 1
    for (let i = 0; i < 3; i++) await writeFile(join(src, 'a', 'b', 'deep', `new-${i}.bin`), randomBytes(3 << 20));
    await sameSizeSameMtime(join(src, 'c', 'f3.json'));
    const packs = async () => (await readdir(join(disks[0]!, 'data'), { recursive: true })).length;
    const before = await packs();
    const child = spawn(process.execPath, args('backup', 's'), { cwd: root, stdio: 'ignore', env });
    let exit: string | number | null | undefined;
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exit = signal ?? code))));
    while (exit === undefined && (await packs()) === before) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // then a run that fails as it commits (each disk full as its snapshot is written): the caches stay the last snapshots'
    await sameSizeSameMtime(join(src, 'c', 'f1.json'));
    const failed = spawnSync(process.execPath, args('backup', 's'), { cwd: root, encoding: 'utf8', env: { ...env, MEDVAULT_FAULTS: 'match=snapshot,action=enospc' } });
    expect(failed.status, failed.stdout + failed.stderr).not.toBe(0);
    expect(failed.stdout + failed.stderr).toMatch(/ENOSPC/);
    const again = cli('backup', 's');
    expect(again.code, again.out).toBe(0);
    await verifyDisks('rerun after a SIGKILLed and a failed run', false);
    // --full after cached runs, then cached again
    expect(cli('backup', 's', '--full').code).toBe(0);
    await sameSizeSameMtime(join(src, 'a', 'b', 'deep', 'er', 'f1.json'));
    expect(cli('backup', 's').code).toBe(0);
    await verifyDisks('after --full', true);
  }, 60_000);
});

describe.skipIf(process.getuid?.() !== 0)('on a file system whose timestamps are coarse (ramfs; ext4 before Linux 6.13)', () => {
  it('a file written again in the clock tick the backup read it in is not lost by the next run', async () => {
    const dir = await tempDir('mv-wbreak-coarse-');
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
    onTestFinished(() => void execFileSync('umount', ['-l', dir]));
    const t = await testRepo();
    const plain = await uncached(t.store, t.localKey);
    onTestFinished(() => plain.close());
    const f = join(dir, 'chart.json');
    const version = (n: number) => Buffer.alloc(4096, 0x30 + (n % 10));
    writeFileSync(f, version(0));
    await new Archiver(t.repo).backup({ store: 's', source: dir, job: 'incremental' });
    const open = sync.open;
    try {
      // a writer writes f as the walk opens it and again right after the walk read it: when both
      // writes fall in one tick of the file system's clock (before the fix, at the first try or so),
      // f's stat is as it was read, its content is not
      for (let n = 1; n < 20; n += 2) {
        writeFileSync(f, version(n + 9)); // changed, so the walk opens it
        const ticks: bigint[] = [];
        const write = (v: number) => (writeFileSync(f, version(v)), ticks.push(lstatSync(f, { bigint: true }).ctimeNs));
        sync.open = (p, flags, mode) => (p.toString() === f && ticks.length === 0 && write(n), open(p, flags, mode));
        await new Archiver(t.repo).backup({ store: 's', source: dir, job: 'incremental', onProgress: () => void (ticks.length === 1 && write(n + 1)) });
        sync.open = open;
        if (ticks[0] === ticks[1]) break;
      }
    } finally {
      sync.open = open;
    }
    const r = await new Archiver(t.repo).backup({ store: 's', source: dir, job: 'incremental' });
    await verify(t.repo, plain, r.snapshot, dir, 'the run after');
  }, 60_000);
});
