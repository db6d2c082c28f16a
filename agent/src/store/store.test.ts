import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { readdirSync, readlinkSync, renameSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sha256Hex } from '@medvault/protocol';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeContract } from './store-contract.js';
import { DirStore } from './dir-store.js';
import { MemStore } from './mem-store.js';

storeContract('MemStore', async () => new MemStore());
storeContract('DirStore', async () => {
  const s = new DirStore(join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo'));
  await s.init();
  return s;
});

/** A fresh DirStore holding one pack of 4 KiB: its folder, the store, the pack's name and bytes. */
async function onePack(): Promise<{ dir: string; store: DirStore; name: string; data: Buffer }> {
  const dir = join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo');
  const store = new DirStore(dir);
  await store.init();
  const data = randomBytes(4096);
  const name = sha256Hex(data);
  await store.put('pack', name, data);
  return { dir, store, name, data };
}

describe('DirStore cached pack handles', () => {
  it('reads the new file once another process replaced a damaged pack (the daemon beside check --repair)', async () => {
    const { dir, store: daemon, name, data: good } = await onePack();
    const file = join(dir, 'data', name.slice(0, 2), name);
    const bad = Buffer.from(good);
    bad[100] = bad[100]! ^ 1;
    await chmod(file, 0o644);
    await writeFile(file, bad); // rot on the disk, same inode
    const range = { offset: 0, length: 4096 };
    expect((await daemon.get('pack', name, range))!.equals(bad)).toBe(true); // the handle is cached now
    const repair = new DirStore(dir);
    await repair.delete('pack', name);
    await repair.put('pack', name, good); // a new file under the same name
    expect((await daemon.get('pack', name, range))!.equals(good)).toBe(true);
    await repair.delete('pack', name);
    expect(await daemon.get('pack', name, range)).toBeUndefined();
  });

  it('are closed a second after the last ranged read, so the disk can be unmounted while the daemon runs', async () => {
    const { dir, store: s, name, data } = await onePack();
    const open = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir); } catch { return false; } }).length;
    expect((await s.get('pack', name, { offset: 0, length: 16 }))!.equals(data.subarray(0, 16))).toBe(true);
    expect(open()).toBe(1);
    await new Promise((r) => setTimeout(r, 1300));
    expect(open()).toBe(0);
    expect((await s.get('pack', name, { offset: 16, length: 16 }))!.equals(data.subarray(16, 32))).toBe(true); // opened again when needed
  });
});

describe('DirStore list', () => {
  it('ignores what is not its own in the pack folders: other names, subfolders, folders that are not data/xx', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo');
    const s = new DirStore(dir);
    await s.init();
    const b = Buffer.from('a pack');
    await s.put('pack', sha256Hex(b), b);
    const sub = join(dir, 'data', sha256Hex(b).slice(0, 2));
    await writeFile(join(sub, 'notes.txt~'), 'editor backup');
    await mkdir(join(sub, sha256Hex(Buffer.from('x'))));
    await mkdir(join(dir, 'data', 'lost+found'));
    await writeFile(join(dir, 'data', 'lost+found', sha256Hex(Buffer.from('y'))), 'y');
    const listed = [];
    for await (const e of s.list('pack')) listed.push(e);
    expect(listed).toEqual([{ name: sha256Hex(b), size: b.length }]);
  });
});

describe('DirStore on a disk that goes', () => {
  it('a put after the repository\'s folder is gone fails and makes none of it again (an unmounted disk\'s mount point is the system disk)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mv-store-'));
    const store = new DirStore(join(dir, 'repo'));
    await store.init();
    renameSync(join(dir, 'repo'), join(dir, 'away'));
    for (const [kind, data] of [['pack', randomBytes(2 * 1024 * 1024)], ['index', randomBytes(100)]] as const) {
      await expect(store.put(kind, sha256Hex(data), data)).rejects.toMatchObject({ code: 'MV_ERR_STORAGE_FAILED', message: expect.stringContaining('ENOENT') });
    }
    expect(readdirSync(dir)).toEqual(['away']);
  });
});

describe('DirStore large objects (O_DIRECT)', () => {
  /** Bytes of `file` in the page cache (util-linux fincore). */
  const cached = (file: string) => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]).toString().trim());

  it('writes a pack past the page cache, exactly its bytes, also one whose size is not a multiple of 4 KiB', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo');
    const store = new DirStore(dir);
    await store.init();
    for (const size of [3 * 1024 * 1024 + 123, 2 * 1024 * 1024]) {
      const data = randomBytes(size);
      const name = sha256Hex(data);
      expect(await store.put('pack', name, data)).toBe(true);
      const file = join(dir, 'data', name.slice(0, 2), name);
      expect(statSync(file).size).toBe(size);
      expect(cached(file)).toBe(0); // through the page cache it would be all there until written back and reclaimed
      expect((await store.get('pack', name))!.equals(data)).toBe(true);
    }
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)('writes through the page cache on a file system that refuses O_DIRECT (ramfs); another disk goes on with O_DIRECT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mv-ramfs-'));
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
    onTestFinished(() => void execFileSync('umount', ['-l', dir]));
    const store = new DirStore(join(dir, 'repo'));
    await store.init();
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const name = sha256Hex(data);
    expect(await store.put('pack', name, data)).toBe(true);
    expect((await store.get('pack', name))!.equals(data)).toBe(true);
    expect(readdirSync(join(dir, 'repo', 'tmp'))).toEqual([]);
    // a second disk of the same process: the ramfs's refusal had switched O_DIRECT off for all
    const other = new DirStore(join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo'));
    await other.init();
    expect(await other.put('pack', name, data)).toBe(true);
    expect(cached(join(other.root, 'data', name.slice(0, 2), name))).toBe(0);
  });
});
