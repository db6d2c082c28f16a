/**
 * Path-escape tests with crafted snapshots: whatever the snapshot or the order's paths say, no
 * write lands outside the restore target. Names with '..', absolute names, names with '/', and
 * symlinks (in the snapshot or already in the target) that lead out are refused and reported.
 */
import { describe, it, expect } from 'vitest';
import { mkdir, readdir, symlink, writeFile, lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { testRepo, tempDir, type TestRepo } from '../repo/testing.js';
import { Restorer } from './restorer.js';
import { encodeTree, type TreeNode } from '../repo/tree.js';
import { fingerprintTree } from './escape-support.test-support.js';

const b = (s: string) => Buffer.from(s);
const summary = { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, newBytes: 0, storedBytes: 0, reused: 0, changed: 0, errors: 0 };

/** Writes a snapshot whose root tree is made by `build` (which may save blobs); returns its hash. */
async function crafted(t: TestRepo, build: (w: Awaited<ReturnType<TestRepo['repo']['writer']>>, chunk: string) => Promise<TreeNode[]>): Promise<string> {
  const w = await t.repo.writer();
  const chunk = (await w.saveBlob('data', b('evil bytes'))).id;
  const tree = await w.saveBlob('tree', encodeTree(await build(w, chunk)));
  const snap = await w.saveSnapshot({ v: 1, time: Date.now(), store: 's', job: 'full', tree: tree.id, host: 'h', source: '/x', partial: false, summary, errors: [], tags: [], actor: { kind: 'agent', id: 'test' } });
  await w.release();
  return snap;
}

const base = (name: string | Buffer) => ({ name: (typeof name === 'string' ? b(name) : name).toString('base64url'), display: name.toString(), mode: 0o644, uid: 0, gid: 0, mtime: '0', ctime: '0', inode: '1', dev: '1', links: 1 });
const file = (name: string | Buffer, chunk: string): TreeNode => ({ ...base(name), type: 'file', size: 10, content: [chunk] });
const dir = (name: string, subtree: string): TreeNode => ({ ...base(name), mode: 0o755, type: 'dir', size: 0, subtree });
const link = (name: string, target: string): TreeNode => ({ ...base(name), mode: 0o777, type: 'symlink', size: 0, target: b(target).toString('base64url') });

/** A sandbox: `outside` holds a sentinel file and the target folder sits next to it. */
async function sandbox() {
  const root = await tempDir('mv-escape-');
  const outside = join(root, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'sentinel'), 'untouched');
  const target = join(root, 'restore', 'target');
  await mkdir(target, { recursive: true });
  return { root, outside, target, before: await fingerprintTree(root) };
}

/** Everything outside `target` below `root` is as before. */
async function outsideUnchanged(s: Awaited<ReturnType<typeof sandbox>>) {
  const after = await fingerprintTree(s.root);
  for (const [k, v] of s.before) if (!k.startsWith('restore/target')) expect(after.get(k), k).toBe(v);
  for (const k of after.keys()) if (!k.startsWith('restore/target')) expect(s.before.has(k), `new entry ${k} outside the target`).toBe(true);
}

describe('restore path escapes', () => {
  it("refuses '..', '.', '/'-holding and absolute names at every depth, restoring the rest", async () => {
    const t = await testRepo();
    const s = await sandbox();
    const snap = await crafted(t, async (w, chunk) => {
      const inner = await w.saveBlob('tree', encodeTree([file('..', chunk), file('../../outside/sentinel', chunk), file('ok-inner', chunk)]));
      return [
        file('..', chunk), file('.', chunk), file('a/../../x', chunk), file(`${s.outside}/abs`, chunk), file('/etc/mv-evil', chunk),
        dir('sub', inner.id), file('ok.txt', chunk),
      ];
    });
    for (const mode of ['new', 'overwrite'] as const) {
      const res = await new Restorer(t.repo).restore({ snapshot: snap, paths: [], target: s.target, mode });
      expect(res.failed).toEqual(expect.arrayContaining(['..', '.', 'a/../../x', `${s.outside}/abs`, '/etc/mv-evil', 'sub/..', 'sub/../../outside/sentinel']));
      expect(res.errors.every((e) => e.message.length > 0)).toBe(true);
      await outsideUnchanged(s);
    }
    expect((await readdir(s.target)).sort()).toEqual(['ok.txt', 'sub']);
    expect(await readdir(join(s.target, 'sub'))).toEqual(['ok-inner']);
  });

  it("refuses order paths that climb out through a crafted '..' folder", async () => {
    const t = await testRepo();
    const s = await sandbox();
    const snap = await crafted(t, async (w, chunk) => {
      const evil = await w.saveBlob('tree', encodeTree([file('sentinel', chunk), file('planted', chunk)]));
      const up = await w.saveBlob('tree', encodeTree([dir('outside', evil.id)]));
      const upup = await w.saveBlob('tree', encodeTree([dir('..', up.id)]));
      return [dir('..', upup.id), file('ok.txt', chunk)];
    });
    for (const paths of [['../../outside/planted'], ['../..'], ['..'], ['./../..'], ['ok.txt', '../../outside/sentinel']]) {
      for (const mode of ['new', 'overwrite'] as const) {
        const res = await new Restorer(t.repo).restore({ snapshot: snap, paths, target: s.target, mode }).catch((err: Error) => ({ refused: err.message }));
        if ('refused' in res) expect(res.refused).toMatch(/refused/);
        else expect(res.failed.length).toBeGreaterThan(0);
        await outsideUnchanged(s);
      }
    }
  });

  it('restores a symlink that points out as a symlink, and never writes through it', async () => {
    const t = await testRepo();
    const s = await sandbox();
    const snap = await crafted(t, async (w, chunk) => {
      const through = await w.saveBlob('tree', encodeTree([file('sentinel', chunk), file('planted', chunk)]));
      // The same name twice: first a symlink out, then a folder whose files would land outside if followed.
      return [link('out', s.outside), dir('out', through.id), link('abs', '/etc'), file('ok.txt', chunk)];
    });
    for (const mode of ['new', 'overwrite'] as const) {
      await new Restorer(t.repo).restore({ snapshot: snap, paths: [], target: s.target, mode });
      await outsideUnchanged(s);
    }
    const st = await lstat(join(s.target, 'abs'));
    expect(st.isSymbolicLink()).toBe(true);
    expect(await readlink(join(s.target, 'abs'))).toBe('/etc');
  });

  it('never follows symlinks already in the target, at any depth, in either mode', async () => {
    const t = await testRepo();
    const s = await sandbox();
    const snap = await crafted(t, async (w, chunk) => {
      const deep = await w.saveBlob('tree', encodeTree([file('sentinel', chunk), file('planted', chunk)]));
      const mid = await w.saveBlob('tree', encodeTree([dir('deep', deep.id), file('sentinel', chunk)]));
      return [dir('a', mid.id), file('f', chunk)];
    });
    await mkdir(join(s.target, 'a'));
    await symlink(s.outside, join(s.target, 'a', 'deep'));
    await symlink(join(s.outside, 'sentinel'), join(s.target, 'f'));
    for (const mode of ['new', 'overwrite'] as const) {
      await new Restorer(t.repo).restore({ snapshot: snap, paths: [], target: s.target, mode });
      await outsideUnchanged(s);
    }
    for (const paths of [['a/deep'], ['a/deep/planted'], ['f']]) {
      await new Restorer(t.repo).restore({ snapshot: snap, paths, target: s.target, mode: 'overwrite' });
      await outsideUnchanged(s);
    }
  });

  it('never follows a symlinked target parent out of the target', async () => {
    const t = await testRepo();
    const s = await sandbox();
    const snap = await crafted(t, async (w, chunk) => {
      const sub = await w.saveBlob('tree', encodeTree([file('planted', chunk)]));
      return [dir('x', sub.id)];
    });
    await symlink(s.outside, join(s.target, 'x'));
    await new Restorer(t.repo).restore({ snapshot: snap, paths: ['x/planted'], target: s.target, mode: 'overwrite' });
    await outsideUnchanged(s);
  });
});
