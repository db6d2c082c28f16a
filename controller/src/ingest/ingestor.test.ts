import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_HEADER, PART_SIZE, decode, decodePart, encodePartHeader, objectParts, sha256Hex, streams, subjects, verifyMessage } from '@medvault/protocol';
import { REPO, SITE, controlMessages, randomObject, sendObject, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';

const receiptsFor = async (f: Fixture, hash: string) =>
  (await controlMessages(f)).filter((m) => m.subject === subjects.control(SITE, 'receipt')).map((m) => decode(m.data, 'mv.receipt.v1')).filter((r) => r.hash === hash);

describe('Ingestor against a real nats-server', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture({ maxObjectBytes: 8 * 1024 * 1024 });
  });
  afterAll(async () => {
    await f?.dispose();
  });

  it('stores a valid multi-part object off site, reads it back and issues a signed receipt', async () => {
    const data = randomObject(3 * 1024 * 1024);
    const { hash, parts } = await sendObject(f, data);
    expect(parts).toBe(Math.ceil(data.byteLength / PART_SIZE));
    const [receipt] = await waitFor(async () => {
      const r = await receiptsFor(f, hash);
      return r.length > 0 && r;
    }, 15_000, 'receipt');
    expect(receipt).toMatchObject({ type: 'mv.receipt.v1', site: SITE, repo: REPO, kind: 'pack', hash, size: data.byteLength });
    expect(() => verifyMessage(receipt!, f.key.publicKey)).not.toThrow();

    const copy = await f.nats.bus.readSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'pack', hash), 100);
    expect(copy).toHaveLength(parts);
    const heads = copy.map((m) => decodePart(m.header(OBJECT_HEADER), m.data.byteLength));
    expect(heads.map((h) => h.part)).toEqual([...Array(parts).keys()]);
    expect(sha256Hex(...copy.map((m) => m.data))).toBe(hash);
    // The inbox is a work queue: once receipted, the parts are gone.
    await waitFor(async () => (await f.nats.bus.countSubject(streams.inbox.name, subjects.inbox(SITE, REPO, 'pack', hash))) === 0, 5000, 'inbox drained');
  });

  it('refuses an object whose bytes do not match its hash: no receipt, nothing off site', async () => {
    const data = randomObject(2 * 1024 * 1024 + 17);
    const wrong = sha256Hex(randomObject(32));
    const before = f.app.ingestor.stats().refused;
    await sendObject(f, data, { hash: wrong });
    await waitFor(() => f.app.ingestor.stats().refused > before, 10_000, 'refusal');
    expect(await receiptsFor(f, wrong)).toHaveLength(0);
    expect(await f.nats.bus.countSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'pack', wrong))).toBe(0);
    expect(await f.nats.bus.countSubject(streams.inbox.name, subjects.inbox(SITE, REPO, 'pack', wrong))).toBe(0);
  });

  it('acks a resent object that has its receipt: no second copy and no second receipt', async () => {
    const data = randomObject(1024 * 1024 + 5);
    const { hash, parts } = await sendObject(f, data, { kind: 'index' });
    await waitFor(async () => (await receiptsFor(f, hash)).length === 1, 10_000, 'first receipt');
    const dups = f.app.ingestor.stats().duplicates;
    // A new msg id: the resend is past the inbox duplicate window, as after a long outage.
    await sendObject(f, data, { kind: 'index', msgIdSuffix: '.again' });
    await waitFor(() => f.app.ingestor.stats().duplicates >= dups + parts, 10_000, 'duplicates acked');
    await waitFor(async () => (await f.nats.bus.countSubject(streams.inbox.name, subjects.inbox(SITE, REPO, 'index', hash))) === 0, 5000, 'inbox drained');
    expect(await receiptsFor(f, hash)).toHaveLength(1);
    expect(await f.nats.bus.countSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'index', hash))).toBe(parts);
  });

  it('stores objects of 0, 1, PART_SIZE and PART_SIZE+1 bytes, many at once, each exactly once', async () => {
    const sizes = [0, 1, PART_SIZE, PART_SIZE + 1, ...Array.from({ length: 12 }, (_, i) => 1000 * i + 7)];
    const objs = sizes.map((n) => randomObject(n));
    const sent = await Promise.all(objs.map((o) => sendObject(f, o, { kind: 'snapshot' })));
    for (const [i, { hash, parts }] of sent.entries()) {
      await waitFor(async () => (await receiptsFor(f, hash)).length === 1, 20_000, `receipt of ${sizes[i]} bytes`);
      const copy = await f.nats.bus.readSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'snapshot', hash), 100);
      expect(copy.map((m) => decodePart(m.header(OBJECT_HEADER), m.data.byteLength).part)).toEqual([...Array(parts).keys()]);
      expect(sha256Hex(...copy.map((m) => m.data))).toBe(hash);
    }
    expect(sent.map((s) => s.parts).slice(0, 4)).toEqual([1, 1, 1, 2]);
    expect((await receiptsFor(f, sent[0]!.hash))[0]!.size).toBe(0);
  });

  it('puts parts that arrive out of order in order, and finishes a stored copy whose receipt a crash prevented', async () => {
    const data = randomObject(4 * PART_SIZE + 3);
    const hash = sha256Hex(data);
    const heads = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size: data.byteLength });
    for (const h of [...heads].reverse()) {
      await f.nats.bus.publish(subjects.inbox(SITE, REPO, 'pack', hash), data.subarray(h.part * h.partSize, (h.part + 1) * h.partSize), {
        msgId: `rev.${hash}.${h.part}`,
        headers: { [OBJECT_HEADER]: encodePartHeader(h) },
      });
    }
    await waitFor(async () => (await receiptsFor(f, hash)).length === 1, 30_000, 'receipt of reversed parts');
    const copy = await f.nats.bus.readSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'pack', hash), 100);
    expect(copy.map((m) => decodePart(m.header(OBJECT_HEADER), m.data.byteLength).part)).toEqual([0, 1, 2, 3, 4]);

    // A complete copy without a receipt (the controller died before it): the redelivered last part finishes it.
    const done = randomObject(2 * PART_SIZE);
    const dh = sha256Hex(done);
    const dheads = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash: dh, size: done.byteLength });
    for (const h of dheads) {
      await f.nats.bus.publish(subjects.offsite(SITE, REPO, 'pack', dh), done.subarray(h.part * h.partSize, (h.part + 1) * h.partSize), { msgId: `${SITE}.${REPO}.pack.${dh}.${h.part}`, headers: { [OBJECT_HEADER]: encodePartHeader(h) } });
    }
    const last = dheads[1]!;
    await f.nats.bus.publish(subjects.inbox(SITE, REPO, 'pack', dh), done.subarray(last.partSize), { msgId: `last.${dh}`, headers: { [OBJECT_HEADER]: encodePartHeader(last) } });
    await waitFor(async () => (await receiptsFor(f, dh)).length === 1, 10_000, 'receipt of the stored copy');
    expect(await f.nats.bus.countSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'pack', dh))).toBe(2);
  });

  it('receipts a copy stored before a crash without storing it again, and replaces a partial one', async () => {
    const good = randomObject(1500 * 1024);
    const goodHash = sha256Hex(good);
    const heads = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash: goodHash, size: good.byteLength });
    const off = subjects.offsite(SITE, REPO, 'pack', goodHash);
    for (const h of heads) {
      await f.nats.bus.publish(off, good.subarray(h.part * h.partSize, (h.part + 1) * h.partSize), { headers: { [OBJECT_HEADER]: encodePartHeader(h) } });
    }
    await sendObject(f, good);
    await waitFor(async () => (await receiptsFor(f, goodHash)).length === 1, 10_000, 'receipt of pre-stored copy');
    expect(await f.nats.bus.countSubject(streams.offsite.name, off)).toBe(heads.length);

    const partial = randomObject(1500 * 1024);
    const partialHash = sha256Hex(partial);
    const ph = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash: partialHash, size: partial.byteLength });
    const poff = subjects.offsite(SITE, REPO, 'pack', partialHash);
    await f.nats.bus.publish(poff, partial.subarray(0, ph[0]!.partSize), { headers: { [OBJECT_HEADER]: encodePartHeader(ph[0]!) } });
    await sendObject(f, partial);
    await waitFor(async () => (await receiptsFor(f, partialHash)).length === 1, 10_000, 'receipt after replacing a partial copy');
    const copy = await f.nats.bus.readSubject(streams.offsite.name, poff, 100);
    expect(copy).toHaveLength(ph.length);
    expect(sha256Hex(...copy.map((m) => m.data))).toBe(partialHash);
  });

  it('resumes a copy with a gap from a failed pipelined publish: the parts in order are kept, the strays purged, nothing acked is lost', async () => {
    const data = randomObject(4 * PART_SIZE - 100);
    const hash = sha256Hex(data);
    const heads = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size: data.byteLength });
    const off = subjects.offsite(SITE, REPO, 'pack', hash);
    const key = `${SITE}.${REPO}.pack.${hash}`;
    const bytes = (p: number) => data.subarray(p * PART_SIZE, (p + 1) * PART_SIZE);
    // Parts 0 and 1 stored and acked from the inbox; the publish of 2 failed, 3's (in flight behind it) was stored.
    for (const p of [0, 1, 3]) await f.nats.bus.publish(off, bytes(p), { msgId: `${key}.${p}`, headers: { [OBJECT_HEADER]: encodePartHeader(heads[p]!) } });
    for (const p of [2, 3]) await f.nats.bus.publish(subjects.inbox(SITE, REPO, 'pack', hash), bytes(p), { msgId: `gap.${hash}.${p}`, headers: { [OBJECT_HEADER]: encodePartHeader(heads[p]!) } });
    await waitFor(async () => (await receiptsFor(f, hash)).length === 1, 10_000, 'receipt after resuming from the gap');
    const copy = await f.nats.bus.readSubject(streams.offsite.name, off, 100);
    expect(copy.map((m) => decodePart(m.header(OBJECT_HEADER), m.data.byteLength).part)).toEqual([0, 1, 2, 3]);
    expect(sha256Hex(...copy.map((m) => m.data))).toBe(hash);
  });

  it('refuses objects over the configured maximum with no receipt', async () => {
    const big = randomObject(9 * 1024 * 1024);
    const before = f.app.ingestor.stats().refused;
    const { hash } = await sendObject(f, big);
    await waitFor(() => f.app.ingestor.stats().refused > before, 10_000, 'refusal');
    expect(await receiptsFor(f, hash)).toHaveLength(0);
    expect(await f.nats.bus.countSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'pack', hash))).toBe(0);
  });

  it('rebuilds what is off site from JetStream after a restart: a resend is a duplicate, not a second receipt', async () => {
    const data = randomObject(700 * 1024);
    const { hash } = await sendObject(f, data, { kind: 'snapshot' });
    await waitFor(async () => (await receiptsFor(f, hash)).length === 1, 10_000, 'receipt');
    const app = await f.restart();
    expect(app.index.get({ site: SITE, repo: REPO, kind: 'snapshot', hash })).toMatchObject({ size: data.byteLength });
    expect(app.index.totals(SITE).objects).toBeGreaterThanOrEqual(4);
    await sendObject(f, data, { kind: 'snapshot', msgIdSuffix: '.after-restart' });
    await waitFor(() => app.ingestor.stats().duplicates === 1, 10_000, 'duplicate');
    expect(await receiptsFor(f, hash)).toHaveLength(1);
    expect(app.ingestor.stats().stored).toBe(0);
    expect(await f.nats.bus.countSubject(streams.offsite.name, subjects.offsite(SITE, REPO, 'snapshot', hash))).toBe(1);
  });
});
