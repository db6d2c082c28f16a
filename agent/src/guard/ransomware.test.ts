import { describe, expect, it } from 'vitest';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { assess, compareSnapshots, entropy, TreeDiff, type ChangeStats } from './ransomware.js';
import type { TreeNode } from '../repo/tree.js';
import { Archiver } from '../backup/archiver.js';
import { tempDir, testRepo } from '../repo/testing.js';

const base: ChangeStats = { before: 1000, after: 1000, changed: 0, added: 0, deleted: 0, renamed: 0, sampled: 0, turnedRandom: 0 };

describe('assess (golden cases)', () => {
  const cases: [string, Partial<ChangeStats>, boolean, RegExp?][] = [
    ['a normal day: a few files change', { changed: 30, added: 10 }, false],
    ['a new month of DICOM images arrives: many added, nothing changed', { added: 900, after: 1900 }, false],
    ['every file rewritten', { changed: 1000 }, true, /1000 of 1000 files \(100%\) changed/],
    ['renamed to a new extension', { deleted: 400, added: 400, renamed: 400 }, true, /renamed to new extensions/],
    ['contents turned random, sizes kept', { changed: 300, sampled: 200, turnedRandom: 150 }, true, /high-entropy/],
    ['mass deletion (or an empty mount point)', { deleted: 800, after: 200 }, true, /disappeared/],
    ['a tiny store is not judged', { before: 5, changed: 5 }, false],
  ];
  for (const [name, over, suspect, reason] of cases) {
    it(name, () => {
      const v = assess({ ...base, ...over });
      expect(v.suspect).toBe(suspect);
      if (reason) expect(v.reasons.join('; ')).toMatch(reason);
    });
  }
});

describe('entropy', () => {
  it('is low for text and near 8 for random bytes', () => {
    expect(entropy(Buffer.from('{"resourceType":"Patient","name":[{"family":"Hodkiewicz"}]}'.repeat(100)))).toBeLessThan(5);
    expect(entropy(Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 2654435761) >>> 24)))).toBeGreaterThan(7.9);
  });
});

describe('change stats from a real backup', () => {
  const text = (i: number) => `{"resourceType":"Observation","id":"${i}","status":"final","code":"glucose"}\n`.repeat(40);

  async function tree(): Promise<string> {
    const dir = await tempDir('mv-guard-');
    for (const d of ['a', 'gone', 'same', 'd2']) await mkdir(join(dir, d));
    for (let i = 0; i < 30; i++) await writeFile(join(dir, 'a', `t${i}.txt`), text(i));
    for (let i = 0; i < 4; i++) await writeFile(join(dir, 'gone', `g${i}.txt`), text(100 + i));
    for (let i = 0; i < 5; i++) await writeFile(join(dir, 'same', `s${i}.txt`), text(200 + i));
    for (let i = 0; i < 2; i++) await writeFile(join(dir, 'd2', `e${i}.txt`), text(300 + i));
    await writeFile(join(dir, 'f'), text(400));
    return dir;
  }

  /** 5 rewritten, 3 encrypted in place, 4 encrypted and renamed, 2 deleted, 3 new; a folder gone; a file becomes a folder and a folder a file. */
  async function attack(dir: string): Promise<void> {
    for (let i = 0; i < 5; i++) await writeFile(join(dir, 'a', `t${i}.txt`), text(1000 + i));
    for (let i = 5; i < 8; i++) await writeFile(join(dir, 'a', `t${i}.txt`), randomBytes(Buffer.byteLength(text(i))));
    for (let i = 8; i < 12; i++) {
      await writeFile(join(dir, 'a', `t${i}.txt.locked`), randomBytes(4096));
      await rm(join(dir, 'a', `t${i}.txt`));
    }
    for (const i of [12, 13]) await rm(join(dir, 'a', `t${i}.txt`));
    for (let i = 0; i < 3; i++) await writeFile(join(dir, 'a', `n${i}.txt`), text(2000 + i));
    await rm(join(dir, 'gone'), { recursive: true });
    await rm(join(dir, 'f'));
    await mkdir(join(dir, 'f'));
    for (let i = 0; i < 2; i++) await writeFile(join(dir, 'f', `h${i}.txt`), text(500 + i));
    await rm(join(dir, 'd2'), { recursive: true });
    await writeFile(join(dir, 'd2'), text(600));
  }

  it('the backup gathers the same counts as walking both snapshots, and they are right', async () => {
    const t = await testRepo();
    const src = await tree();
    const first = await new Archiver(t.repo).backup({ store: 'records', source: src, job: 'incremental' });
    expect(first.changes).toBeUndefined(); // no parent
    await attack(src);
    const second = await new Archiver(t.repo).backup({ store: 'records', source: src, job: 'incremental' });
    const expected: ChangeStats = { before: 42, after: 39, changed: 8, added: 10, deleted: 13, renamed: 4, sampled: 12, turnedRandom: 7 };
    expect(second.changes).toEqual(expected);
    expect(await compareSnapshots(t.repo, first.snapshot, second.snapshot)).toEqual(expected);
    expect(assess(expected).reasons.join('; ')).toMatch(/7 of 12 sampled changed files turned high-entropy/);
    // the sample is bounded and does not depend on the order folders were visited
    const small = await compareSnapshots(t.repo, first.snapshot, second.snapshot, 2);
    expect(small.sampled).toBe(2);
    expect(await compareSnapshots(t.repo, first.snapshot, second.snapshot, 2)).toEqual(small);

    const none = await new Archiver(t.repo).backup({ store: 'records', source: src, job: 'incremental' });
    const quiet: ChangeStats = { before: 39, after: 39, changed: 0, added: 0, deleted: 0, renamed: 0, sampled: 0, turnedRandom: 0 };
    expect(none.changes).toEqual(quiet);
    expect(await compareSnapshots(t.repo, second.snapshot, none.snapshot)).toEqual(quiet);
  });
});

describe('TreeDiff.measure', () => {
  const file = (name: string, id: string): TreeNode => ({ name, display: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', ctime: '1', size: 4096, inode: '1', dev: '1', links: 1, content: [id] });
  const id = (c: string) => c.repeat(64);
  it('a new first chunk measured while read is not loaded again; the old one only when the new is high-entropy', async () => {
    const diff = new TreeDiff();
    diff.folder([file('a', id('1')), file('b', id('2'))], [file('a', id('3')), file('b', id('4'))]);
    diff.measure(randomBytes(4096))!(id('3'));
    diff.measure(Buffer.alloc(4096, 'x'))!(id('4'));
    const loaded: string[] = [];
    const repo = { loadTree: async () => [], loadBlob: async (blob: string) => (loaded.push(blob), Buffer.alloc(4096, 'y')) };
    expect(await diff.finish(repo)).toMatchObject({ changed: 2, sampled: 2, turnedRandom: 1 });
    expect(loaded).toEqual([id('1')]);
  });
});

