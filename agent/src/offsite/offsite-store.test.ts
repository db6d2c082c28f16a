import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OBJECT_HEADER, encodePartHeader, subjects } from '@medvault/protocol';
import { testRepo, tempDir } from '../repo/testing.js';
import { Restorer } from '../restore/restorer.js';
import { Repository } from '../repo/repository.js';
import { MemLink } from '../replicate/mem-link.js';
import { OffsiteStore, listRepos } from './offsite-store.js';
import { FIXTURE_FILES, offsiteFixture, storeOffsite } from './testing.js';

const SITE = 'clinic-a';

/** Counts reads per filter. */
function counting(link: MemLink) {
  const reads: string[] = [];
  return { reads, link: { read: (s: string, f: string, o?: { headersOnly?: boolean }) => (reads.push(f), link.read(s, f, o)) } };
}

describe('OffsiteStore', () => {
  it('opens the repository off site and restores a snapshot byte for byte; lists repositories', async () => {
    const { t, src, link, snapshot } = await offsiteFixture(SITE);
    expect(await listRepos(link, SITE)).toEqual([t.repo.id]);
    expect(await listRepos(link, 'clinic-b')).toEqual([]);
    const off = new OffsiteStore(link, SITE, t.repo.id);
    const repo = await Repository.open(off, { localKey: t.localKey }, { label: off.label });
    const target = await tempDir('mv-offdst-');
    const res = await new Restorer(repo).restore({ snapshot, paths: [], target, mode: 'new' });
    expect(res.files).toBe(FIXTURE_FILES + 1);
    expect(res.failed).toEqual([]);
    expect(res.verified).toBe(res.files);
    for (let i = 0; i < FIXTURE_FILES; i++) expect((await readFile(join(target, 'd', `f${i}.bin`))).equals(await readFile(join(src, 'd', `f${i}.bin`)))).toBe(true);
    // list and has agree with the local repository
    const names = async (s: { list(k: 'pack'): AsyncIterable<{ name: string; size: number }> }) => {
      const out: string[] = [];
      for await (const e of s.list('pack')) out.push(`${e.name}:${e.size}`);
      return out.sort();
    };
    expect(await names(off)).toEqual(await names(t.store));
    expect(await off.has('config', 'config')).toBe(true);
    expect(await off.has('snapshot', snapshot)).toBe(true);
    expect(await off.has('snapshot', 'ab'.repeat(32))).toBe(false);
    expect(await off.get('index', 'ab'.repeat(32))).toBeUndefined();
    await repo.close();
  });

  it('fetches each pack once for its ranged reads (LRU), ahead as the restorer names them', async () => {
    const { t, link, snapshot } = await offsiteFixture(SITE);
    const c = counting(link);
    const off = new OffsiteStore(c.link, SITE, t.repo.id, { readAhead: 2 });
    const repo = await Repository.open(off, { localKey: t.localKey });
    await new Restorer(repo).restore({ snapshot, paths: [], target: await tempDir('mv-offdst-'), mode: 'new' });
    const packReads = c.reads.filter((f) => /\.pack\.[0-9a-f]{64}$/.test(f));
    const packs: string[] = [];
    for await (const e of t.store.list('pack')) packs.push(e.name);
    expect(packs.length).toBeGreaterThan(2);
    expect(packReads.length).toBe(packs.length);
    expect(new Set(packReads).size).toBe(packs.length);
    await repo.close();
    // prefetch: at most readAhead packs fetched ahead and unread; one asked for frees a slot
    c.reads.length = 0;
    const ahead = new OffsiteStore(c.link, SITE, t.repo.id, { readAhead: 2, cachePacks: 8 });
    ahead.prefetch('pack', packs);
    const fetched = () => c.reads.filter((f) => /\.pack\./.test(f)).map((f) => f.slice(-64));
    expect(fetched()).toEqual(packs.slice(0, 2));
    await ahead.get('pack', packs[0]!, { offset: 0, length: 1 });
    ahead.prefetch('pack', packs);
    expect(fetched()).toEqual(packs.slice(0, 3));
    await ahead.get('pack', packs[1]!);
    expect(fetched()).toEqual(packs.slice(0, 3)); // held already: not fetched again
  });

  it('refuses a damaged, incomplete or mislabelled off-site object with MV_ERR_DATA_CORRUPT naming it', async () => {
    const { t, link } = await offsiteFixture(SITE);
    const bySize: { name: string; size: number }[] = [];
    for await (const e of t.store.list('pack')) bySize.push(e);
    const packs = bySize.sort((a, b) => b.size - a.size).map((e) => e.name); // the largest have several parts
    const [flipped, cut, relabelled] = packs;
    const msgs = (h: string) => link.messages.filter((m) => m.subject.endsWith(h));
    const d = msgs(flipped!)[1]!.data;
    d[100] = d[100]! ^ 1;
    link.messages.splice(link.messages.indexOf(msgs(cut!)[0]!), 1);
    const hdr = JSON.parse(msgs(relabelled!)[0]!.headers[OBJECT_HEADER]!);
    msgs(relabelled!)[0]!.headers[OBJECT_HEADER] = encodePartHeader({ ...hdr, hash: flipped });
    const off = new OffsiteStore(link, SITE, t.repo.id);
    await expect(off.get('pack', flipped!)).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringMatching(new RegExp(`pack ${flipped}: bytes hash to`)) });
    await expect(off.get('pack', cut!)).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringMatching(new RegExp(`pack ${cut}: 1 of \\d+ parts missing`)) });
    await expect(off.get('pack', relabelled!)).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringContaining(`part header describes ${SITE}/${t.repo.id} pack ${flipped}`) });
    // the bulk read reports each of them and yields the others verified
    const got = new Map<string, string>();
    for await (const o of off.objects('pack')) got.set(o.name, 'data' in o ? 'ok' : o.problem);
    expect(got.size).toBe(packs.length);
    expect(got.get(flipped!)).toMatch(/bytes hash to/);
    expect(got.get(cut!)).toMatch(/parts missing/);
    expect(got.get(relabelled!)).toMatch(/part header describes/);
    expect([...got.values()].filter((v) => v === 'ok').length).toBe(packs.length - 3);
  });

  it('refuses the config of another repository under this repository', async () => {
    const { t, link } = await offsiteFixture(SITE);
    const other = await testRepo();
    const other2 = new MemLink();
    await storeOffsite(other2, SITE, other.repo);
    const cfg = other2.messages.find((m) => m.subject.includes('.config.'))!;
    const hdr = JSON.parse(cfg.headers[OBJECT_HEADER]!);
    const victim = new MemLink();
    await victim.publish(subjects.offsite(SITE, t.repo.id, 'config', hdr.hash), cfg.data, { msgID: 'x', headers: { [OBJECT_HEADER]: encodePartHeader({ ...hdr, repo: t.repo.id }) } });
    await expect(new OffsiteStore(victim, SITE, t.repo.id).get('config', 'config')).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringContaining('config of another repository') });
    void link;
  });
});
