import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodePart, generateSigningKey, OBJECT_HEADER, sha256Hex, signMessage, type ObjectKind, type Receipt } from '@medvault/protocol';
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
    async readObject(kind, hash) {
      return byKind.get(kind)!.get(hash)!;
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
