/**
 * Large objects, streamed end to end through a real nats-server: an agent-side replicator reading
 * a repository folder (DirStore) and the controller's ingest, in bounded memory. One pack of 1 GiB
 * (written straight into the store), objects of 0, 1, PART_SIZE and PART_SIZE+1 bytes and 40 small
 * ones at once; every object exactly once off site (its `parts` messages, in part order, hashing
 * to its name), exactly one receipt each, the inbox empty, memory bounded on both sides.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, writeSync, closeSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_HEADER, PART_SIZE, decode, decodePart, partCount, streams, subjects, type ObjectKind } from '@medvault/protocol';
import { DirStore } from '../../agent/src/store/dir-store.js';
import { openLink, type Link } from '../../agent/src/replicate/link.js';
import { ReceiptBook } from '../../agent/src/replicate/receipts.js';
import { Replicator, type ReplicaSource } from '../../agent/src/replicate/replicator.js';
import { REPO, SITE, controlMessages, startFixture, waitFor, type Fixture } from '../../controller/src/fixture.test-support.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Writes `size` bytes of pseudo-random data as a content-addressed object of `store`; returns its hash. */
function writeObject(root: string, kind: 'pack' | 'snapshot', size: number): string {
  const tmp = join(root, `tmp-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'w');
  const h = createHash('sha256');
  const block = randomBytes(8 * MiB);
  for (let off = 0, i = 0; off < size; i++) {
    const n = Math.min(block.length, size - off);
    block.writeUInt32LE(i, 0); // no two blocks alike
    h.update(block.subarray(0, n));
    writeSync(fd, block, 0, n);
    off += n;
  }
  closeSync(fd);
  const hash = h.digest('hex');
  const dir = kind === 'pack' ? join(root, 'data', hash.slice(0, 2)) : join(root, 'snapshots');
  mkdirSync(dir, { recursive: true });
  renameSync(tmp, join(dir, hash));
  return hash;
}

/** A repository folder as the replicator sees it (only what these tests write: packs and snapshots). */
export function storeSource(store: DirStore, id: string): ReplicaSource {
  return {
    id,
    async *listObjects(kind: ObjectKind) {
      if (kind !== 'pack' && kind !== 'snapshot') return;
      for await (const e of store.list(kind)) yield { hash: e.name, size: e.size };
    },
    async readRange(kind, hash, offset, length) {
      const b = await store.get(kind as 'pack', hash, { offset, length });
      if (!b) throw new Error(`${kind} ${hash} missing`);
      return b;
    },
  };
}

describe('large objects through a real nats-server', () => {
  let f: Fixture;
  let link: Link;
  let root: string;
  beforeAll(async () => {
    f = await startFixture({ maxObjectBytes: 4 * GiB });
    link = await openLink({ servers: [f.server.url], name: 'large-objects test agent' });
    root = mkdtempSync(join(tmpdir(), 'mv-large-'));
  });
  afterAll(async () => {
    await link?.close();
    await f?.dispose();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('replicates a 1 GiB pack and many small objects exactly once, in bounded memory', async () => {
    const big = writeObject(root, 'pack', GiB);
    const sizes = [0, 1, PART_SIZE, PART_SIZE + 1, ...Array.from({ length: 40 }, (_, i) => 997 * i + 3)];
    const small = sizes.map((n) => ({ hash: writeObject(root, 'snapshot', n), size: n }));
    const objects = [{ kind: 'pack' as const, hash: big, size: GiB }, ...small.map((o) => ({ kind: 'snapshot' as const, ...o }))];

    const book = ReceiptBook.open(join(root, 'state'));
    const follower = link.follow(streams.control.name, subjects.control(SITE, 'receipt'), 1, async (m) => {
      book.accept(decode(m.data, 'mv.receipt.v1'), { site: SITE, controllerKey: f.key.publicKey });
    });
    const rep = new Replicator({ site: SITE, source: storeSource(new DirStore(root), REPO), link, book, now: Date.now });

    const base = process.memoryUsage().rss;
    let peakRss = base;
    let peakHeld = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakHeld = Math.max(peakHeld, f.app.ingestor.stats().inProgress.heldBytes);
    }, 50);
    const t0 = Date.now();
    try {
      expect(await rep.drain()).toEqual({ sent: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0) });
      await waitFor(() => objects.every((o) => book.has(REPO, o.kind, o.hash)), 600_000, 'every receipt');
    } finally {
      clearInterval(sampler);
      await follower.stop();
    }
    const seconds = (Date.now() - t0) / 1000;
    console.log(`1 GiB + ${small.length} objects: ${seconds.toFixed(1)} s (${(GiB / MiB / seconds).toFixed(0)} MiB/s), RSS +${((peakRss - base) / MiB).toFixed(0)} MiB, controller held ≤ ${(peakHeld / MiB).toFixed(1)} MiB`);
    // Both sides stream: memory does not grow with the object (the test process holds agent and controller).
    expect(peakRss - base).toBeLessThan(320 * MiB);
    expect(peakHeld).toBeLessThanOrEqual(17 * MiB); // at most one pulled batch of parts

    // Off site: exactly `parts` messages per object, in part order, hashing to the name.
    for (const o of objects) {
      const subject = subjects.offsite(SITE, REPO, o.kind, o.hash);
      const h = createHash('sha256');
      let next = 0;
      for await (const m of f.nats.bus.scanSubject(streams.offsite.name, subject)) {
        expect(decodePart(m.header(OBJECT_HEADER), m.data.byteLength).part).toBe(next++);
        h.update(m.data);
      }
      expect(next).toBe(partCount(o.size));
      expect(h.digest('hex')).toBe(o.hash);
      expect(await f.nats.bus.countSubject(streams.inbox.name, subjects.inbox(SITE, REPO, o.kind, o.hash))).toBe(0);
    }
    const receipts = (await controlMessages(f)).filter((m) => m.subject === subjects.control(SITE, 'receipt')).map((m) => decode(m.data, 'mv.receipt.v1'));
    for (const o of objects) expect(receipts.filter((r) => r.hash === o.hash)).toHaveLength(1);
    book.close();
  }, 900_000);
});
