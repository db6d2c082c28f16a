/** Test-only: puts a repository off site in a MemLink exactly as the controller stores it (mv.v1.off… parts). */
import { OBJECT_HEADER, encodePartHeader, objectKinds, objectParts, subjects } from '@medvault/protocol';
import { mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MemLink } from '../replicate/mem-link.js';
import type { Repository } from '../repo/repository.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from '../backup/archiver.js';

export async function storeOffsite(link: MemLink, site: string, repo: Repository, partSize = 256 * 1024): Promise<void> {
  for (const kind of objectKinds) {
    for await (const { hash } of repo.listObjects(kind)) {
      const bytes = await repo.readObject(kind, hash);
      for (const p of objectParts({ site, repo: repo.id, kind, hash, size: bytes.length }, partSize)) {
        await link.publish(subjects.offsite(site, repo.id, kind, hash), bytes.subarray(p.part * partSize, (p.part + 1) * partSize), { msgID: `${kind}.${hash}.${p.part}`, headers: { [OBJECT_HEADER]: encodePartHeader(p) } });
      }
    }
  }
}

/** Files of 3 MiB in the fixture: enough for at least three packs. */
export const FIXTURE_FILES = 10;

/** A repository with one snapshot of FIXTURE_FILES 3 MiB files and a note, stored off site in a MemLink. */
export async function offsiteFixture(site: string) {
  const t = await testRepo();
  const src = await tempDir('mv-offsrc-');
  await mkdir(join(src, 'd'));
  for (let i = 0; i < FIXTURE_FILES; i++) await writeFile(join(src, 'd', `f${i}.bin`), randomBytes(3 * 1024 * 1024 + i));
  await writeFile(join(src, 'note.txt'), 'hello');
  const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
  if (r.summary.errors > 0) throw new Error(`fixture backup had ${r.summary.errors} errors`);
  const link = new MemLink();
  await storeOffsite(link, site, t.repo);
  return { t, src, link, snapshot: r.snapshot };
}
