/**
 * The off-site fetcher's thread (agent/src/offsite/fetcher.ts) against a real TLS-only nats-server
 * with the site's own credentials: it opens its own connection from the Link's options and returns
 * the same verified bytes, the same refusals and the same "not there" as the in-thread read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_HEADER, encodePartHeader, objectParts, subjects } from '@medvault/protocol';
import { startSecureSite, type SecureSite } from '../support/secure-nats.js';
import { Fetcher } from '../../agent/src/offsite/fetcher.js';
import { OffsiteStore } from '../../agent/src/offsite/offsite-store.js';
import { openOffsiteRepository } from '../../agent/src/offsite/restore-source.js';
import { encodeConfig } from '../../agent/src/repo/config-file.js';
import { until } from '../support/procs.js';
import { readdirSync } from 'node:fs';

const A = 'clinic-a';
const REPO = 'cd'.repeat(16);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('off-site fetcher thread', () => {
  let s: SecureSite;
  beforeAll(async () => {
    s = await startSecureSite('mv-fetcher-', [A], A);
  }, 60_000);
  afterAll(async () => s?.dispose());

  /** Stores `bytes` off site as the controller does (parts of 256 KiB); `damage` flips a byte of part 1. */
  async function put(bytes: Buffer, damage = false, kind: 'pack' | 'config' = 'pack'): Promise<string> {
    const hash = sha(bytes);
    const partSize = 256 * 1024;
    for (const p of objectParts({ site: A, repo: REPO, kind, hash, size: bytes.length }, partSize)) {
      const data = Buffer.from(bytes.subarray(p.part * partSize, (p.part + 1) * partSize));
      if (damage && p.part === 1) data[7] = data[7]! ^ 1;
      await s.ctl.bus.publish(subjects.offsite(A, REPO, kind, hash), data, { headers: { [OBJECT_HEADER]: encodePartHeader(p) } });
    }
    return hash;
  }

  it('returns verified packs, refuses a damaged one naming it, and says when one is not there', async () => {
    const good = randomBytes(3 * 1024 * 1024 + 5);
    const goodHash = await put(good);
    const badHash = await put(randomBytes(600 * 1024), true);
    expect(s.link.options).toBeDefined();
    const f = new Fetcher(s.link.options!, A, REPO);
    try {
      expect((await f.fetch('pack', goodHash))!.equals(good)).toBe(true);
      await expect(f.fetch('pack', badHash)).rejects.toMatchObject({ code: 'MV_ERR_DATA_CORRUPT', message: expect.stringContaining(`pack ${badHash}: bytes hash to`) });
      expect(await f.fetch('pack', 'ef'.repeat(32))).toBeUndefined();
      // the same answers as the read in this thread
      const here = new OffsiteStore(s.link, A, REPO);
      expect((await here.read('pack', goodHash))!.equals(good)).toBe(true);
      // closed, the next fetch starts a new thread; a store with the fetcher serves ranges from it
      await f.close();
      const store = new OffsiteStore(s.link, A, REPO, { fetcher: f });
      expect((await store.get('pack', goodHash, { offset: 1000, length: 10 }))!.equals(good.subarray(1000, 1010))).toBe(true);
    } finally {
      await f.close();
    }
  }, 120_000);

  it('a repository that fails to open (its config fetched by the thread, no key off site) leaves no thread behind: one per failed restore order in the daemon', async () => {
    await put(encodeConfig({ version: 1, id: REPO, created: 1, chunker: { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 } }), false, 'config');
    const threads = () => readdirSync('/proc/self/task').length;
    const open = () => openOffsiteRepository(s.link, A, REPO, { localKey: Buffer.alloc(32) });
    await expect(open()).rejects.toMatchObject({ code: 'MV_ERR_KEY_INVALID' }); // warms up the pools
    const before = threads();
    for (let i = 0; i < 3; i++) await expect(open()).rejects.toMatchObject({ code: 'MV_ERR_KEY_INVALID' });
    await until('the fetch threads ended', () => (threads() <= before ? true : undefined), 10_000, 100).catch(() => undefined);
    expect(threads()).toBeLessThanOrEqual(before);
  }, 60_000);

  it('fails its fetches with MV_ERR_TRANSPORT_FAILED when its connection cannot be made', async () => {
    const f = new Fetcher({ ...s.link.options!, servers: ['tls://127.0.0.1:1'], failFast: true }, A, REPO);
    try {
      await expect(f.fetch('pack', 'ef'.repeat(32))).rejects.toMatchObject({ code: 'MV_ERR_TRANSPORT_FAILED' });
    } finally {
      await f.close();
    }
  }, 60_000);
});
