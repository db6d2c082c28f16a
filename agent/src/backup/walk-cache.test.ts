/**
 * The walk cache changes no snapshot: an incremental with it makes the trees and counts an
 * incremental without it makes from the same parent, and a stale, damaged or foreign cache is
 * not used (the walk loads the parent's trees) and is written anew.
 */
import { describe, it, expect } from 'vitest';
import { mkdir, readdir, readFile, symlink, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { testRepo, tempDir, type TestRepo } from '../repo/testing.js';
import { Repository } from '../repo/repository.js';
import { Archiver } from './archiver.js';
import { cacheSchema, plainCache } from './walk-cache.js';

async function source(): Promise<string> {
  const dir = await tempDir('mv-walk-');
  for (const d of ['a', 'a/b', 'a/b/deep', 'c', 'empty']) await mkdir(join(dir, d));
  for (const d of ['a', 'a/b', 'a/b/deep', 'c']) for (let i = 0; i < 5; i++) await writeFile(join(dir, d, `f${i}.json`), `{"n":${i},"d":"${d}"}`.repeat(100 + i));
  await writeFile(join(dir, 'a', 'b', 'big.bin'), randomBytes(3 * 1024 * 1024));
  await symlink('a/f1.json', join(dir, 'link'));
  return dir;
}

/** A second handle on the repository without a cache folder: it neither reads nor writes the walk cache. */
const uncached = (t: TestRepo) => Repository.open(t.store, { localKey: t.localKey }, { label: t.store.root });

/** Counts the trees a backup loads from the repository. */
function countTreeLoads(repo: Repository): { n: number } {
  const c = { n: 0 };
  const load = repo.loadTree.bind(repo);
  repo.loadTree = (id) => (c.n++, load(id));
  return c;
}

const comparable = (s: { files: number; dirs: number; symlinks: number; others: number; bytes: number; reused: number }) => [s.files, s.dirs, s.symlinks, s.others, s.bytes, s.reused];

describe('walk cache', () => {
  it('an incremental with it makes the same trees, counts and change stats as one without it', async () => {
    const t = await testRepo();
    const src = await source();
    const plain = await uncached(t);
    try {
      // one store walked with the cache, one without, from the same parents
      for (const [store, repo] of [['x', t.repo], ['y', plain]] as const) await new Archiver(repo).backup({ store, source: src, job: 'incremental' });
      expect((await readdir(join(t.cacheDir, `${t.repo.id}.walk`))).length).toBe(1);
      const edits = [
        async () => writeFile(join(src, 'a', 'b', 'deep', 'f2.json'), '{"changed":true}'),
        async () => writeFile(join(src, 'c', 'new.json'), '{}'),
        async () => rm(join(src, 'a', 'f0.json')),
        async () => mkdir(join(src, 'empty', 'sub')),
        async () => undefined, // nothing changed
      ];
      for (const edit of edits) {
        await edit();
        const loads = countTreeLoads(t.repo);
        const x = await new Archiver(t.repo).backup({ store: 'x', source: src, job: 'incremental' });
        const y = await new Archiver(plain).backup({ store: 'y', source: src, job: 'incremental' });
        expect((await t.repo.loadSnapshot(x.snapshot)).tree).toBe((await plain.loadSnapshot(y.snapshot)).tree);
        expect(comparable(x.summary)).toEqual(comparable(y.summary));
        expect(x.changes).toEqual(y.changes);
        expect(x.summary.files).toBeGreaterThan(20);
        if (edit === edits[4]) expect(loads.n).toBe(0); // nothing changed: no tree loaded at all
        else expect(loads.n).toBeLessThanOrEqual(4); // only the changed folder and those above it
      }
    } finally {
      await plain.close();
    }
  });

  it('is not used when it belongs to another snapshot or is damaged, and is written anew', async () => {
    const t = await testRepo();
    const src = await source();
    const a = new Archiver(t.repo);
    await a.backup({ store: 's', source: src, job: 'incremental' });
    const [name] = await readdir(join(t.cacheDir, `${t.repo.id}.walk`));
    const file = join(t.cacheDir, `${t.repo.id}.walk`, name!);
    // a snapshot the cache was not written after (another handle, or an older agent)
    const plain = await uncached(t);
    await new Archiver(plain).backup({ store: 's', source: src, job: 'incremental' });
    await plain.close();
    await t.reopen();
    let loads = countTreeLoads(t.repo);
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    expect(loads.n).toBeGreaterThan(5); // stale: every tree of the parent loaded
    loads = countTreeLoads(t.repo);
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    expect(loads.n).toBe(0); // written anew after that run
    // one byte flipped: the sealed file does not open
    const b = await readFile(file);
    b[b.length - 20]! ^= 1;
    await writeFile(file, b);
    loads = countTreeLoads(t.repo);
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    expect(r.partial).toBe(false);
    expect(loads.n).toBeGreaterThan(5);
    // a full run never uses it (it rereads every file), but leaves one for the next incremental
    loads = countTreeLoads(t.repo);
    const full = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(full.summary.reused).toBe(0);
    expect(loads.n).toBeGreaterThan(5);
    loads = countTreeLoads(t.repo);
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    expect(loads.n).toBe(0);
  });

  it('is not used once an index file it names is gone (its chunk entries may be gone with it)', async () => {
    const t = await testRepo();
    const src = await source();
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    // the index file goes; the next writer re-indexes its packs under a new index file
    const idx = (await readdir(join(t.store.root, 'index'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    for (const e of idx) await rm(join(e.parentPath, e.name));
    await t.reopen();
    const loads = countTreeLoads(t.repo);
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    expect(r.partial).toBe(false);
    expect(loads.n).toBeGreaterThan(5);
  });
});

describe('walk cache file check', () => {
  const h = (c: string) => c.repeat(64);
  const good = { v: 1, store: 'records', snapshot: h('a'), indexes: [h('b'), h('c')], folders: { [h('d')]: ['fp', 3, 1024, 0, 1, { c3Vi: h('e') }], [h('f')]: ['', 0, 0, 0, 0, {}] } };
  // each breaks one rule of cacheSchema: the hand check must refuse every one, as zod does
  const broken: [string, (j: any) => void][] = [
    ['unknown key', (j) => (j.extra = 1)],
    ['version 2', (j) => (j.v = 2)],
    ['store a number', (j) => (j.store = 5)],
    ['snapshot not a hash', (j) => (j.snapshot = 'x')],
    ['indexes not a list', (j) => (j.indexes = h('b'))],
    ['index uppercase', (j) => (j.indexes = [h('B')])],
    ['folders a list', (j) => (j.folders = [])],
    ['folder not a tuple', (j) => (j.folders[h('d')] = { fp: 'fp' })],
    ['folder tuple short', (j) => j.folders[h('d')].pop()],
    ['folder tuple long', (j) => j.folders[h('d')].push(1)],
    ['fp a number', (j) => (j.folders[h('d')][0] = 1)],
    ['negative count', (j) => (j.folders[h('d')][1] = -1)],
    ['fractional bytes', (j) => (j.folders[h('d')][2] = 1.5)],
    ['count too large', (j) => (j.folders[h('d')][3] = 2 ** 53)],
    ['subfolders a list', (j) => (j.folders[h('d')][5] = [h('e')])],
    ['subfolder id short', (j) => (j.folders[h('d')][5] = { a: 'abc' })],
    ['subfolders null', (j) => (j.folders[h('d')][5] = null)],
  ];
  it('accepts what cacheSchema accepts, and refuses everything zod refuses', () => {
    expect(plainCache(structuredClone(good))).toEqual(cacheSchema.parse(structuredClone(good)));
    for (const [what, breakIt] of broken) {
      const j = structuredClone(good);
      breakIt(j);
      expect(cacheSchema.safeParse(j).success, `${what}: zod`).toBe(false);
      expect(plainCache(j), what).toBeUndefined();
    }
  });
});
