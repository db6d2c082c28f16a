import { describe, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Restorer } from '../restore/restorer.js';
import { tempDir } from '../repo/testing.js';
import { OffsiteStore } from '../offsite/offsite-store.js';
import { DirStore } from '../store/dir-store.js';
import { FIXTURE_FILES, offsiteFixture } from '../offsite/testing.js';
import { Checker } from './checker.js';
import { repairRepository } from './repair.js';

const SITE = 'clinic-a';
const packPath = (root: string, h: string) => join(root, 'data', h.slice(0, 2), h);

async function names(store: { list(k: 'pack' | 'index'): AsyncIterable<{ name: string }> }, kind: 'pack' | 'index'): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(kind)) out.push(e.name);
  return out.sort();
}

describe('repairRepository', () => {
  it('heals a flipped byte in one pack, a deleted pack and a deleted index file from the off-site copy', async () => {
    const { t, src, link, snapshot } = await offsiteFixture(SITE);
    const [flipped, gone] = await names(t.store, 'pack');
    const [index] = await names(t.store, 'index');
    const f = packPath(t.store.root, flipped!);
    const b = await readFile(f);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0x10;
    await writeFile(f, b);
    await rm(packPath(t.store.root, gone!));
    await rm(join(t.store.root, 'index', index!));
    await t.repo.rebuildCatalog();
    expect((await new Checker(t.repo).check({ readData: true })).ok).toBe(false);

    const r = await repairRepository(t.repo, t.store, new OffsiteStore(link, SITE, t.repo.id));
    expect(r.ok).toBe(true);
    const healed = r.objects.map((o) => `${o.kind} ${o.name} ${o.healed}`).sort();
    expect(healed).toEqual([`index ${index} true`, `pack ${flipped} true`, `pack ${gone} true`].sort());
    expect((await new Checker(t.repo).check({ readData: true })).ok).toBe(true);
    const target = join(await tempDir('mv-heal-'), 'out');
    const res = await new Restorer(t.repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(res.failed).toEqual([]);
    for (let i = 0; i < FIXTURE_FILES; i++) expect((await readFile(join(target, 'd', `f${i}.bin`))).equals(await readFile(join(src, 'd', `f${i}.bin`)))).toBe(true);
  });

  it('heals a flipped byte in the pack holding the snapshot\'s root tree, and its re-check is clean', async () => {
    const { t, link, snapshot } = await offsiteFixture(SITE);
    const root = await t.repo.catalog.blob((await t.repo.loadSnapshot(snapshot)).tree);
    await t.repo.loadTree(root!.id); // the tree is read (and may be kept) before the damage
    const f = packPath(t.store.root, root!.pack);
    const b = await readFile(f);
    const at = root!.offset + (root!.length >> 1);
    b[at] = b[at]! ^ 0x10;
    await writeFile(f, b);
    const before = await new Checker(t.repo).check({ readData: true });
    expect(before.damaged.map((d) => `${d.kind} ${d.name}`)).toContain(`pack ${root!.pack}`);

    // as `check --repair` does: healed through a store of its own, not the repository's (whose open pack handles see the old file)
    const r = await repairRepository(t.repo, new DirStore(t.store.root), new OffsiteStore(link, SITE, t.repo.id));
    expect(r.check.damaged).toEqual([]);
    expect(r).toMatchObject({ ok: true, objects: [{ kind: 'pack', name: root!.pack, healed: true }] });
  });

  it('reports an object the off-site copy lacks, or has damaged too, as not healable', async () => {
    const { t, link } = await offsiteFixture(SITE);
    const [lacking, bothBad] = await names(t.store, 'pack');
    await rm(packPath(t.store.root, lacking!));
    await rm(packPath(t.store.root, bothBad!));
    link.messages.splice(0, link.messages.length, ...link.messages.filter((m) => !m.subject.endsWith(lacking!)));
    const part = link.messages.find((m) => m.subject.endsWith(bothBad!))!;
    part.data[0] = part.data[0]! ^ 1;
    const r = await repairRepository(t.repo, t.store, new OffsiteStore(link, SITE, t.repo.id));
    expect(r.ok).toBe(false);
    expect(r.check.ok).toBe(false);
    const by = new Map(r.objects.map((o) => [o.name, o]));
    expect(by.get(lacking!)).toMatchObject({ kind: 'pack', healed: false, why: 'the off-site copy does not have it' });
    expect(by.get(bothBad!)).toMatchObject({ kind: 'pack', healed: false, why: expect.stringMatching(/bytes hash to/) });
  });
});
