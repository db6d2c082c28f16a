import { describe, it, expect, vi } from 'vitest';
import { writeFile, mkdir, rm, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { isError, codes, sha256Hex, objectKinds } from '@medvault/protocol';
import { testRepo, tempDir } from './testing.js';
import { Repository } from './repository.js';
import { Archiver } from '../backup/archiver.js';
import { MemStore } from '../store/mem-store.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { cryptoPool } from '../crypto/pool.js';

async function source(): Promise<string> {
  const dir = await tempDir('mv-src-');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'a.txt'), 'alpha '.repeat(1000));
  await writeFile(join(dir, 'sub', 'b.bin'), randomBytes(3 * 1024 * 1024));
  return dir;
}

describe('Repository', () => {
  it('opens with the recovery private key; a wrong local key fails with MV_ERR_KEY_INVALID', async () => {
    const t = await testRepo();
    const src = await source();
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const viaRecovery = await Repository.open(t.store, { recoveryPrivateKey: t.recovery.privateKey });
    expect(viaRecovery.id).toBe(t.repo.id);
    expect((await viaRecovery.resolveSnapshot('latest', 's')).hash).toBe(r.snapshot);
    await viaRecovery.close();
    const wrong = await Repository.open(t.store, { localKey: randomBytes(32) }).catch((e) => e);
    expect(isError(wrong, codes.KEY_INVALID)).toBe(true);
    const other = await generateRecoveryKeyPair();
    const wrongRecovery = await Repository.open(t.store, { recoveryPrivateKey: other.privateKey }).catch((e) => e);
    expect(isError(wrongRecovery, codes.KEY_INVALID)).toBe(true);
  });

  it('refuses an unknown magic or version with MV_ERR_FORMAT_UNKNOWN', async () => {
    const s = new MemStore();
    await s.put('config', 'config', Buffer.from('MVXX\x01{}'));
    expect(isError(await Repository.open(s, { localKey: randomBytes(32) }).catch((e) => e), codes.FORMAT_UNKNOWN)).toBe(true);
    const s2 = new MemStore();
    await s2.put('config', 'config', Buffer.from('MVCF\x09{}'));
    expect(isError(await Repository.open(s2, { localKey: randomBytes(32) }).catch((e) => e), codes.FORMAT_UNKNOWN)).toBe(true);
  });

  it('allows one writer; a stale lock of a dead process is taken over', async () => {
    const t = await testRepo();
    const w = await t.repo.writer();
    const second = await t.repo.writer().catch((e) => e);
    expect(isError(second, codes.REPO_LOCKED)).toBe(true);
    await w.release();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    await t.store.put('lock', 'writer', Buffer.from(JSON.stringify({ pid: Number(dead), host: (await import('node:os')).hostname(), time: 1 })));
    const w2 = await t.repo.writer();
    await w2.release();
  });

  it('holds blobs back while two packs are unwritten, however many callers save at once', async () => {
    const t = await testRepo();
    const w = await t.repo.writer();
    let open = () => {};
    const stalled = new Promise<void>((r) => (open = r));
    const put = t.store.put.bind(t.store);
    vi.spyOn(t.store, 'put').mockImplementation(async (kind, name, data) => {
      if (kind === 'pack') await stalled; // a slow disk
      return put(kind, name, data);
    });
    const sealed = vi.spyOn(cryptoPool(), 'pack');
    const saves = Array.from({ length: 48 }, () => w.saveBlob('data', randomBytes(1 << 20))); // 6 packs' worth
    await new Promise((r) => setTimeout(r, 1500));
    expect(sealed.mock.calls.length).toBeLessThanOrEqual(3);
    open();
    await Promise.all(saves);
    await w.flush();
    await w.release();
    expect(sealed.mock.calls.length).toBeGreaterThanOrEqual(6);
    vi.restoreAllMocks();
  });

  it('rebuilds a deleted LevelDB cache from the index files; dedup still works', async () => {
    const t = await testRepo();
    const src = await source();
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    await t.repo.close();
    await rm(t.cacheDir, { recursive: true, force: true });
    const repo = await Repository.open(t.store, { localKey: t.localKey }, { cacheDir: t.cacheDir });
    const again = await new Archiver(repo).backup({ store: 's', source: src, job: 'full' });
    expect(again.summary.newBytes).toBe(0);
    expect(again.written.filter((o) => o.kind === 'pack')).toEqual([]);
    await repo.close();
  });

  it('lists every readable snapshot, oldest first, however many; a damaged one is left out', async () => {
    const t = await testRepo();
    const w = await t.repo.writer();
    const times = Array.from({ length: 40 }, (_, i) => 1_700_000_000_000 + ((i * 7) % 40) * 1000); // saved out of time order
    const hashes = new Map<number, string>();
    for (const time of times) {
      const snap = { v: 1 as const, time, store: 's', job: 'incremental' as const, tree: 'a'.repeat(64), host: 'h', source: '/src', partial: false, summary: { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, newBytes: 0, storedBytes: 0, reused: 0, changed: 0, errors: 0 }, errors: [], tags: [], actor: { kind: 'user' as const, id: 'test' } };
      hashes.set(time, await w.saveSnapshot(snap));
    }
    await w.release();
    const damaged = hashes.get(times[5]!)!;
    const file = join(t.store.root, 'snapshots', damaged);
    const bytes = await readFile(file);
    bytes[bytes.length - 1]! ^= 1;
    await rm(file, { force: true });
    await writeFile(file, bytes);
    const repo = await t.reopen(); // no snapshot cached
    const want = [...times].sort((a, b) => a - b).filter((x) => x !== times[5]).map((x) => hashes.get(x));
    expect((await repo.snapshots()).map((s) => s.hash)).toEqual(want);
  });

  it('exposes objects for replication, verified by hash', async () => {
    const t = await testRepo();
    const src = await source();
    const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const all = new Map<string, string>();
    for (const kind of objectKinds) for await (const o of t.repo.listObjects(kind)) {
      all.set(`${kind}/${o.hash}`, kind);
      const b = await t.repo.readObject(kind, o.hash);
      expect(sha256Hex(b)).toBe(o.hash);
      expect(b.length).toBe(o.size);
    }
    const needed = await t.repo.snapshotObjects(r.snapshot);
    expect(new Set(needed.map((o) => `${o.kind}/${o.hash}`))).toEqual(new Set(all.keys()));
    for (const w of r.written) expect(all.has(`${w.kind}/${w.hash}`)).toBe(true);
    expect((await t.repo.snapshots()).map((s) => s.hash)).toEqual([r.snapshot]);
    // a tampered object is refused
    const pack = needed.find((o) => o.kind === 'pack')!;
    const file = join(t.store.root, 'data', pack.hash.slice(0, 2), pack.hash);
    const bytes = await readFile(file);
    bytes[100]! ^= 1;
    await rm(file, { force: true });
    await writeFile(file, bytes);
    expect(isError(await t.repo.readObject('pack', pack.hash).catch((e) => e), codes.DATA_CORRUPT)).toBe(true);
    expect(isError(await t.repo.readObject('snapshot', 'f'.repeat(64)).catch((e) => e), codes.NOT_FOUND)).toBe(true);
  });
});
