import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodePart, encodePartHeader, generateSigningKey, objectParts, OBJECT_HEADER, PART_SIZE, sha256Hex, signMessage, subjects, type ObjectKind, type Receipt } from '@medvault/protocol';
import { MemLink } from './mem-link.js';
import { ReceiptBook } from './receipts.js';
import { Replicator, type ReplicaSource } from './replicator.js';

const site = 'clinic-a';
const repoId = 'ab'.repeat(16);

function source(objects: Partial<Record<ObjectKind, Uint8Array[]>>): ReplicaSource {
  const byKind = new Map<ObjectKind, Map<string, Uint8Array>>();
  for (const [kind, list] of Object.entries(objects)) byKind.set(kind as ObjectKind, new Map(list.map((b) => [sha256Hex(b), b])));
  return {
    id: repoId,
    async *listObjects(kind) {
      for (const [hash, b] of byKind.get(kind) ?? []) yield { hash, size: b.byteLength };
    },
    async readRange(kind, hash, offset, length) {
      return byKind.get(kind)!.get(hash)!.subarray(offset, offset + length);
    },
  };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'mv-repl-'));

describe('Replicator', () => {
  const key = generateSigningKey();
  const receipt = (kind: ObjectKind, hash: string, size: number): Receipt =>
    signMessage<Receipt>({ type: "mv.receipt.v1", site, repo: repoId, kind, hash, size, storedAt: 1 }, key);

  it('sends every object once, in write order, in parts that reassemble to the object', async () => {
    const big = Buffer.alloc(2_500_000, 7);
    const link = new MemLink();
    const book = ReceiptBook.open(tmp());
    const r = new Replicator({ site, source: source({ snapshot: [Buffer.from('s')], pack: [big, Buffer.from('p2')], config: [Buffer.from('c')] }), link, book, now: () => 0 });
    expect(await r.drain()).toEqual({ sent: 4, bytes: big.length + 4 });
    const kinds = link.messages.map((m) => m.subject.split('.')[5]);
    expect(kinds[0]).toBe('config');
    expect(kinds.at(-1)).toBe('snapshot');
    const parts = link.messages.filter((m) => m.subject.endsWith(sha256Hex(big))).map((m) => ({ p: decodePart(m.headers[OBJECT_HEADER], m.data.byteLength), data: m.data }));
    expect(parts.length).toBe(3);
    expect(sha256Hex(...parts.sort((a, b) => a.p.part - b.p.part).map((x) => x.data))).toBe(sha256Hex(big));
    // Not resent before the resend interval; the backlog counts what has no receipt.
    expect((await r.drain()).sent).toBe(0);
    expect(r.backlog.objects).toBe(4);
  });

  it('never resends an object with a receipt, and resends one whose receipt is missing', async () => {
    const dir = tmp();
    const a = Buffer.from('pack a');
    const b = Buffer.from('pack b');
    const book = ReceiptBook.open(dir);
    book.accept(receipt('pack', sha256Hex(a), a.length), { site, controllerKey: key.publicKey });
    let t = 0;
    const link = new MemLink();
    const r = new Replicator({ site, source: source({ pack: [a, b] }), link, book, now: () => t, resendAfterMs: 1000 });
    expect((await r.drain()).sent).toBe(1);
    t = 5000;
    expect((await r.drain()).sent).toBe(1); // b again: no receipt came
    expect(link.attempts).toBe(2);
    expect(link.messages.length).toBe(1); // same message id: JetStream keeps one
    // The book survives a restart.
    book.close();
    expect(ReceiptBook.open(dir).has(repoId, 'pack', sha256Hex(a))).toBe(true);
  });

  it('fails the drain during an outage and sends everything after it', async () => {
    const link = new MemLink();
    link.down = true;
    const r = new Replicator({ site, source: source({ pack: [Buffer.from('x'), Buffer.from('y')] }), link, book: ReceiptBook.open(tmp()), now: () => 0 });
    await expect(r.drain()).rejects.toThrow(/link down/);
    link.down = false;
    expect((await r.drain()).sent).toBe(2);
  });
});

describe('Replicator: streaming, stalls and lost acks', () => {
  const inboxOf = (link: MemLink, hash: string) => link.messages.filter((m) => m.subject.startsWith('mv.v1.in.') && m.subject.endsWith(hash));
  /** What the controller would have stored off site: `parts` of the object's parts, in order. */
  const storeOffsite = async (link: MemLink, data: Uint8Array, parts: number) => {
    const hash = sha256Hex(data);
    for (const h of objectParts({ site, repo: repoId, kind: 'pack', hash, size: data.byteLength }).slice(0, parts)) {
      await link.publish(subjects.offsite(site, repoId, 'pack', hash), data.subarray(h.part * h.partSize, (h.part + 1) * h.partSize), { msgID: `off.${hash}.${h.part}`, headers: { [OBJECT_HEADER]: encodePartHeader(h) } });
    }
  };

  it('sends objects of 0, 1, PART_SIZE and PART_SIZE+1 bytes as 1, 1, 1 and 2 parts read as ranges', async () => {
    const objs = [0, 1, PART_SIZE, PART_SIZE + 1].map((n) => Buffer.alloc(n, n % 256));
    const src = source({ pack: objs });
    const ranges: number[] = [];
    const read = src.readRange.bind(src);
    src.readRange = async (k, h, offset, length) => (ranges.push(length), read(k, h, offset, length));
    const link = new MemLink();
    await new Replicator({ site, source: src, link, book: ReceiptBook.open(tmp()), now: () => 0 }).drain();
    for (const o of objs) {
      const ms = inboxOf(link, sha256Hex(o));
      expect(ms.length).toBe(Math.max(1, Math.ceil(o.length / PART_SIZE)));
      expect(sha256Hex(...ms.map((m) => m.data))).toBe(sha256Hex(o));
      expect(ms.map((m) => m.headers['Mv-Object'] && decodePart(m.headers[OBJECT_HEADER], m.data.byteLength).part)).toEqual([...ms.keys()]);
    }
    expect(Math.max(...ranges)).toBe(PART_SIZE); // never the whole object
  });

  it('after a failed publish asks what is off site: a complete copy is not resent, its receipt is asked for once', async () => {
    const data = Buffer.alloc(3 * PART_SIZE, 5);
    const hash = sha256Hex(data);
    const link = new MemLink();
    let t = 0;
    const r = new Replicator({ site, source: source({ pack: [data] }), link, book: ReceiptBook.open(tmp()), now: () => t, resendAfterMs: 1000 });
    link.down = true;
    await expect(r.drain()).rejects.toThrow(/link down/);
    link.down = false;
    await storeOffsite(link, data, 3); // it had arrived after all
    t = 10;
    expect((await r.drain()).sent).toBe(0);
    expect(inboxOf(link, hash)).toHaveLength(0);
    t = 2000; // no receipt within resendAfter: ask with the last part only
    await r.drain();
    expect(inboxOf(link, hash).map((m) => decodePart(m.headers[OBJECT_HEADER], m.data.byteLength).part)).toEqual([2]);
    expect(link.messages.filter((m) => m.subject.startsWith('mv.v1.in.')).length).toBe(1);
  });

  it('resumes a transfer from the first part missing off site, also after a restart', async () => {
    const data = Buffer.alloc(7 * PART_SIZE + 9, 3);
    const hash = sha256Hex(data);
    const link = new MemLink();
    await storeOffsite(link, data, 5);
    // A fresh replicator (the agent restarted): large objects are looked up before their first send.
    await new Replicator({ site, source: source({ pack: [data] }), link, book: ReceiptBook.open(tmp()), now: () => 0 }).drain();
    expect(inboxOf(link, hash).map((m) => decodePart(m.headers[OBJECT_HEADER], m.data.byteLength).part)).toEqual([5, 6, 7]);
  });

  it('reports an object whose bytes do not match its name, sends the others, and does not send it again', async () => {
    const good = Buffer.from('good pack');
    const bad = Buffer.from('rotten pack');
    const src = source({ pack: [good, bad] });
    const read = src.readRange.bind(src);
    const badHash = sha256Hex(bad);
    src.readRange = async (k, h, o, l) => (h === badHash ? Buffer.from('rotten pacK') : read(k, h, o, l));
    const link = new MemLink();
    let t = 0;
    const r = new Replicator({ site, source: src, link, book: ReceiptBook.open(tmp()), now: () => t, resendAfterMs: 10 });
    await expect(r.drain()).rejects.toThrow(new RegExp(`pack/${badHash}: bytes no longer match`));
    expect(inboxOf(link, sha256Hex(good))).toHaveLength(1);
    t = 100;
    link.attempts = 0;
    await r.drain();
    expect(link.attempts).toBe(1); // good again (no receipt came), bad not at all
    expect(link.messages.filter((m) => m.subject.endsWith(badHash)).length).toBe(1);
  });

  it('resends receipted objects the controller asked for, with the message id suffix', async () => {
    const a = Buffer.from('pack a');
    const book = ReceiptBook.open(tmp());
    const key = generateSigningKey();
    book.accept(signMessage<Receipt>({ type: 'mv.receipt.v1', site, repo: repoId, kind: 'pack', hash: sha256Hex(a), size: a.length, storedAt: 1 }, key), { site, controllerKey: key.publicKey });
    const link = new MemLink();
    const r = new Replicator({ site, source: source({ pack: [a] }), link, book, now: () => 0 });
    expect((await r.drain()).sent).toBe(0);
    r.resend([{ kind: 'pack', hash: sha256Hex(a) }], '.r12345678');
    expect((await r.drain()).sent).toBe(1);
    expect((await r.drain()).sent).toBe(0);
    expect(link.messages.length).toBe(1);
  });
});

describe('ReceiptBook', () => {
  it('refuses unsigned, forged and other-site receipts', () => {
    const key = generateSigningKey();
    const book = ReceiptBook.open(tmp());
    const r: Receipt = { type: 'mv.receipt.v1', site, repo: repoId, kind: 'pack', hash: 'c'.repeat(64), size: 1, storedAt: 1 };
    const ctx = { site, controllerKey: key.publicKey };
    expect(() => book.accept(r, ctx)).toThrow(/not signed/);
    expect(() => book.accept(signMessage(r, generateSigningKey()), ctx)).toThrow(/not by the pinned/);
    expect(() => book.accept(signMessage({ ...r, site: 'clinic-b' }, key), ctx)).toThrow(/arrived at site clinic-a/);
    expect(book.size).toBe(0);
    book.accept(signMessage(r, key), ctx);
    expect(book.covers(repoId, [{ kind: 'pack', hash: 'c'.repeat(64) }])).toBe(true);
  });
});
