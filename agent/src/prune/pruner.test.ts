import { describe, it, expect } from 'vitest';
import { writeFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from '../backup/archiver.js';
import { Restorer } from '../restore/restorer.js';
import { Checker } from '../check/checker.js';
import { Pruner } from './pruner.js';
import { PackBuilder } from '../repo/pack.js';

describe('Pruner', () => {
  it('forgets what the policy drops, keeps legal holds, deletes only unneeded data, and kept snapshots restore', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-prune-src-');
    const versions: { snapshot: string; content: Buffer }[] = [];
    for (let i = 0; i < 5; i++) {
      const content = randomBytes(3 * 1024 * 1024);
      await writeFile(join(src, 'scan.bin'), content);
      await writeFile(join(src, 'stable.txt'), 'same every day '.repeat(1000));
      const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'incremental', tags: i === 1 ? ['legal-hold'] : [] });
      versions.push({ snapshot: r.snapshot, content });
    }
    const dry = await new Pruner(t.repo).run({ policy: { last: 2 }, prune: true, dryRun: true });
    expect(dry.forgotten).toHaveLength(2);
    expect(dry.decisions.find((d) => d.hash === versions[1]!.snapshot)!.reasons).toEqual(['legal hold (tag legal-hold)']);
    expect((await t.repo.snapshots()).length).toBe(5);
    const r = await new Pruner(t.repo).run({ policy: { last: 2 }, prune: true, dryRun: false });
    expect(r.forgotten.sort()).toEqual([versions[0]!.snapshot, versions[2]!.snapshot].sort());
    expect(r.packsDeleted + r.packsRepacked).toBeGreaterThan(0);
    expect(r.bytesFreed).toBeGreaterThan(5 * 1024 * 1024);
    const c = await new Checker(t.repo).check({ readData: true });
    expect(c.ok).toBe(true);
    for (const v of [versions[1]!, versions[3]!, versions[4]!]) {
      const out = join(t.dir, `out-${v.snapshot.slice(0, 6)}`);
      const res = await new Restorer(t.repo).restore({ snapshot: v.snapshot, paths: [], target: out, mode: 'new' });
      expect(res.failed).toEqual([]);
      expect((await readFile(join(out, 'scan.bin'))).equals(v.content)).toBe(true);
      await rm(out, { recursive: true });
    }
    // dedup still works after prune
    const again = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    expect(again.summary.newBytes).toBe(0);
  });

  it('prunes cleanly when a crashed run left a pack without an index (adopted, then deleted as unneeded)', async () => {
    const t = await testRepo();
    const src = await tempDir('mv-prune-orphan-');
    await writeFile(join(src, 'a.bin'), randomBytes(500_000));
    await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
    const b = new PackBuilder(t.repo.keys.pack);
    const junk = randomBytes(200_000);
    b.add('data', t.repo.blobId(junk), junk);
    const orphan = b.finish();
    await t.store.put('pack', orphan.hash, orphan.bytes);
    const r = await new Pruner(t.repo).run({ policy: {}, prune: true, dryRun: false });
    expect(r.packsDeleted).toBe(1);
    expect(await t.store.has('pack', orphan.hash)).toBe(false);
    const c = await new Checker(t.repo).check({ readData: true });
    expect(c.damaged).toEqual([]);
    expect(c.ok).toBe(true);
  });
});
