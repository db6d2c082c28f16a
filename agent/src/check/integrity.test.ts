import { describe, it, expect } from 'vitest';
import { writeFile, readFile, mkdir, readdir, rm, cp, stat, open as openFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { isError, codes } from '@medvault/protocol';
import { testRepo, tempDir } from '../repo/testing.js';
import { Repository } from '../repo/repository.js';
import { DirStore } from '../store/dir-store.js';
import { Archiver } from '../backup/archiver.js';
import { Restorer } from '../restore/restorer.js';
import { Checker } from './checker.js';

async function source(files = 12): Promise<string> {
  const dir = await tempDir('mv-int-src-');
  await mkdir(join(dir, 'fhir'));
  await mkdir(join(dir, 'docs'));
  for (let i = 0; i < files; i++) await writeFile(join(dir, 'fhir', `obs-${i}.json`), JSON.stringify({ id: i, v: randomBytes(800).toString('hex') }));
  await writeFile(join(dir, 'docs', 'scan.bin'), randomBytes(1_500_000));
  await writeFile(join(dir, 'docs', 'letter.txt'), 'Dear colleague, '.repeat(5000));
  return dir;
}

async function files(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.set(join(e.parentPath, e.name).slice(dir.length + 1), await readFile(join(e.parentPath, e.name)));
  return out;
}

const folder = { pack: 'data', index: 'index', snapshot: 'snapshots', key: 'keys' } as const;

describe('integrity', () => {
  it('a random bit flipped in each kind of repository file (pack, index, snapshot, key) is always detected, and restore writes no wrong byte', async () => {
    const t = await testRepo();
    const src = await source();
    const orig = await files(src);
    const { snapshot } = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    await t.repo.close();
    const stats = { trials: 0, detected: 0, wrongBytes: 0, restoredOk: 0, refused: 0 };
    for (const kind of ['pack', 'index', 'snapshot', 'key'] as const) {
      for (let trial = 0; trial < 6; trial++) {
        stats.trials++;
        const dir = await tempDir('mv-flip-');
        await cp(t.store.root, join(dir, 'repo'), { recursive: true });
        const names = (await readdir(join(dir, 'repo', folder[kind]), { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
        const victim = names[randomInt(names.length)]!;
        const path = join(victim.parentPath, victim.name);
        const size = (await stat(path)).size;
        const fh = await openFile(path, 'r+');
        const at = randomInt(size);
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, at);
        b[0]! ^= 1 << randomInt(8);
        await fh.write(b, 0, 1, at);
        await fh.close();

        let repo: Repository | undefined;
        let detected = false;
        try {
          repo = await Repository.open(new DirStore(join(dir, 'repo')), { localKey: t.localKey }, { cacheDir: join(dir, 'cache') });
        } catch (err) {
          detected = isError(err, codes.DATA_CORRUPT) || isError(err, codes.KEY_INVALID) || isError(err, codes.FORMAT_UNKNOWN);
        }
        if (repo) {
          const c = await new Checker(repo).check({ readData: true });
          detected = !c.ok && c.damaged.some((d) => d.kind === kind || (kind === 'pack' && d.kind === 'blob'));
          const target = join(dir, 'out');
          const r = await new Restorer(repo).restore({ snapshot, paths: [], target, mode: 'new' }).catch((err) => (isError(err, codes.DATA_CORRUPT) ? undefined : Promise.reject(err)));
          if (!r) stats.refused++;
          else {
            const got = await files(target).catch(() => new Map<string, Buffer>());
            for (const [p, bytes] of got) if (!orig.get(p)?.equals(bytes)) stats.wrongBytes++;
            for (const f of r.failed) expect(got.has(f)).toBe(false);
            if (r.failed.length === 0) stats.restoredOk++;
          }
          await repo.close();
        }
        if (detected) stats.detected++;
        else console.log(`not detected: ${kind} ${victim.name} bit at ${at}`);
        await rm(dir, { recursive: true, force: true });
      }
    }
    console.log(`bit flips: ${JSON.stringify(stats)}`);
    expect(stats.detected).toBe(stats.trials);
    expect(stats.wrongBytes).toBe(0);
  }, 120_000);

  it('a deleted or corrupted index cache is detected and rebuilt; deduplication keeps working', async () => {
    const t = await testRepo();
    const src = await source();
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    await t.repo.close();
    await rm(t.cacheDir, { recursive: true, force: true });
    let repo = await t.reopen();
    expect(repo.catalog.persistent).toBe(true);
    const again = await new Archiver(repo).backup({ store: 's', source: src, job: 'full' });
    expect(again.summary.newBytes).toBe(0);
    await repo.close();
    // scribble over every file of the LevelDB folder
    const cache = join(t.cacheDir, repo.id);
    for (const f of await readdir(cache)) await writeFile(join(cache, f), randomBytes(200));
    repo = await t.reopen();
    expect(repo.catalog.persistent).toBe(true);
    const third = await new Archiver(repo).backup({ store: 's', source: src, job: 'full' });
    expect(third.summary.newBytes).toBe(0);
    expect((await new Checker(repo).check({ readData: true })).ok).toBe(true);
    // a cache entry that points at the wrong place: loadBlob notices and rebuilds
    const r = await new Restorer(repo).restore({ snapshot: third.snapshot, paths: [], target: join(t.dir, 'out'), mode: 'new' });
    expect(r.failed).toEqual([]);
    await repo.close();
  });

  it('check --read-data-subset reads only that share of the packs', async () => {
    const t = await testRepo();
    const src = await source(3);
    for (let i = 0; i < 4; i++) {
      await writeFile(join(src, `new-${i}.bin`), randomBytes(9 * 1024 * 1024));
      await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental' });
    }
    const all = await new Checker(t.repo).check({ readData: true });
    const part = await new Checker(t.repo).check({ readDataSubset: 0.25 });
    expect(all.packsRead).toBe(all.packs);
    expect(part.packsRead).toBe(Math.ceil(all.packs * 0.25));
    expect(part.ok).toBe(true);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('disk full (tmpfs), 20 times: a clean abort, a clean check, and after freeing space the next run succeeds', async () => {
    const dir = await tempDir('mv-full-');
    const mnt = join(dir, 'disk');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt]);
    try {
      const store = new DirStore(join(mnt, 'repo'));
      await store.init();
      const { generateRecoveryKeyPair } = await import('../crypto/recovery.js');
      const localKey = randomBytes(32);
      await Repository.create(store, { localKey, recoveryPublicKey: (await generateRecoveryKeyPair()).publicKey });
      const src = await source(4);
      const cacheDir = join(dir, 'cache');
      for (let i = 0; i < 20; i++) {
        await writeFile(join(src, `day-${i}.bin`), randomBytes(1_200_000));
        const free = Number(execFileSync('df', ['-B1', '--output=avail', mnt]).toString().trim().split('\n')[1]);
        await writeFile(join(mnt, 'filler'), Buffer.alloc(Math.max(0, free - 400_000)));
        let repo = await Repository.open(store, { localKey }, { cacheDir });
        const err = await new Archiver(repo).backup({ store: 's', source: src, job: 'incremental' }).catch((e) => e);
        expect(isError(err, codes.STORAGE_FAILED), String(err)).toBe(true);
        expect(await readdir(join(mnt, 'repo', 'tmp'))).toEqual([]);
        expect(await readdir(join(mnt, 'repo', 'locks'))).toEqual([]);
        await repo.close();
        await rm(join(mnt, 'filler'));
        repo = await Repository.open(store, { localKey }, { cacheDir });
        expect((await new Checker(repo).check()).ok).toBe(true);
        const ok = await new Archiver(repo).backup({ store: 's', source: src, job: 'incremental' });
        expect(ok.partial).toBe(false);
        const c = await new Checker(repo).check({ readData: true });
        expect(c.ok).toBe(true);
        expect(c.unindexed).toBe(0);
        await repo.close();
      }
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  }, 120_000);
});
