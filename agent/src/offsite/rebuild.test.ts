import { describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DirStore } from '../store/dir-store.js';
import { Repository } from '../repo/repository.js';
import { Restorer } from '../restore/restorer.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { FIXTURE_FILES, offsiteFixture } from './testing.js';
import { checkRebuildFolder, rebuildFromOffsite } from './rebuild.js';

const SITE = 'clinic-a';

async function freshDisk(): Promise<DirStore> {
  const d = new DirStore(join(await tempDir('mv-rebuild-'), 'disk'));
  await d.init();
  return d;
}

describe('rebuildFromOffsite', () => {
  it('copies the repository onto a fresh disk that the new local key opens, and restores byte for byte; resuming copies nothing', async () => {
    const { t, src, link, snapshot } = await offsiteFixture(SITE);
    const disk = await freshDisk();
    const localKey = randomBytes(32);
    const base = { link, site: SITE, recoveryPrivateKey: t.recovery.privateKey, recoveryPublicKey: t.recovery.publicKey, localKey, disk, label: 'new disk' };
    const r = await rebuildFromOffsite(base);
    expect(r.repo).toBe(t.repo.id);
    expect(r.failed).toEqual([]);
    expect(r.copied).toBeGreaterThan(3);
    const repo = await Repository.open(disk, { localKey });
    const target = join(await tempDir('mv-rebuilt-'), 'out');
    expect((await new Restorer(repo).restore({ snapshot, paths: [], target, mode: 'new' })).failed).toEqual([]);
    for (let i = 0; i < FIXTURE_FILES; i++) expect((await readFile(join(target, 'd', `f${i}.bin`))).equals(await readFile(join(src, 'd', `f${i}.bin`)))).toBe(true);
    await repo.close();
    const again = await rebuildFromOffsite(base);
    expect([again.copied, again.present, again.keyFile]).toEqual([0, r.copied, r.keyFile]);
  });

  it('refuses a wrong recovery key before writing anything, and a disk holding another repository', async () => {
    const { t, link } = await offsiteFixture(SITE);
    const disk = await freshDisk();
    const wrong = await generateRecoveryKeyPair();
    const base = { link, site: SITE, recoveryPublicKey: t.recovery.publicKey, localKey: randomBytes(32), label: 'new disk' };
    await expect(rebuildFromOffsite({ ...base, disk, recoveryPrivateKey: wrong.privateKey })).rejects.toMatchObject({ code: 'MV_ERR_KEY_INVALID' });
    const written: string[] = [];
    for (const k of ['pack', 'key', 'index', 'snapshot'] as const) for await (const e of disk.list(k)) written.push(e.name);
    expect(written).toEqual([]);
    const other = await testRepo();
    await expect(rebuildFromOffsite({ ...base, disk: other.store, recoveryPrivateKey: t.recovery.privateKey })).rejects.toMatchObject({ code: 'MV_ERR_CONFLICT', message: expect.stringContaining(`holds repository ${other.repo.id}`) });
  });

  it('refuses a folder that is not empty and not a repository, and a partial repository that is another one', async () => {
    const dir = join(await tempDir('mv-rebuild-'), 'disk');
    await checkRebuildFolder(dir); // missing: fine
    await mkdir(dir);
    await checkRebuildFolder(dir); // empty: fine
    await writeFile(join(dir, 'scan-0001.pdf'), 'a document, not a repository');
    await expect(checkRebuildFolder(dir)).rejects.toMatchObject({ code: 'MV_ERR_CONFLICT', message: expect.stringContaining(`${dir} is not empty and is not a repository (holds scan-0001.pdf)`) });
    const { t, link } = await offsiteFixture(SITE);
    const base = { link, site: SITE, recoveryPrivateKey: t.recovery.privateKey, recoveryPublicKey: t.recovery.publicKey, localKey: randomBytes(32), label: 'new disk' };
    // a partial rebuild of this repository (no config yet) resumes
    const partial = await freshDisk();
    for await (const e of t.store.list('key')) await partial.put('key', e.name, (await t.store.get('key', e.name))!);
    await checkRebuildFolder(partial.root);
    expect((await rebuildFromOffsite({ ...base, disk: partial })).failed).toEqual([]);
    // another repository's key files without its config: refused, nothing copied
    const other = await testRepo();
    const foreign = await freshDisk();
    for await (const e of other.store.list('key')) await foreign.put('key', e.name, (await other.store.get('key', e.name))!);
    await expect(rebuildFromOffsite({ ...base, disk: foreign })).rejects.toMatchObject({ code: 'MV_ERR_CONFLICT', message: expect.stringContaining('partial repository that is not this one') });
    const packs: string[] = [];
    for await (const e of foreign.list('pack')) packs.push(e.name);
    expect(packs).toEqual([]);
  });

  it('reports a pack damaged off site and copies the rest', async () => {
    const { t, link } = await offsiteFixture(SITE);
    const part = link.messages.find((m) => m.subject.includes('.pack.'))!;
    part.data[0] = part.data[0]! ^ 1;
    const r = await rebuildFromOffsite({ link, site: SITE, recoveryPrivateKey: t.recovery.privateKey, recoveryPublicKey: t.recovery.publicKey, localKey: randomBytes(32), disk: await freshDisk(), label: 'new disk' });
    expect(r.failed).toEqual([{ kind: 'pack', name: part.subject.split('.').pop(), problem: expect.stringMatching(/bytes hash to/) }]);
    expect(r.copied).toBeGreaterThan(3);
  });
});
