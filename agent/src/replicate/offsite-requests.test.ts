/**
 * Resend and reconcile requests on the agent: signed by the pinned key or refused; receipts revoked
 * durably (the journal replays the revocation); the replicator resends exactly those objects with
 * `.r<id>` message ids; an alert names them and resolves once fresh receipts arrive; reconcile takes
 * what MV_OFFSITE (listed headers only) lacks, whole or in part, except what the controller pruned
 * (signed mv.pruned.v1 records; one signed by another key is ignored).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { OBJECT_HEADER, encode, encodePartHeader, generateSigningKey, objectParts, sha256Hex, signMessage, subjects, type ObjectKind, type PrunedRecord, type Receipt, type ReconcileRequest, type ResendRequest } from '@medvault/protocol';
import { MemLink } from './mem-link.js';
import { ReceiptBook } from './receipts.js';
import { OffsiteRequests } from './offsite-requests.js';

const SITE = 'clinic-a';
const REPO = 'ab'.repeat(16);
const key = generateSigningKey();
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(dir = mkdtempSync(join(tmpdir(), 'mv-offreq-')), clock = { now: 5 }) {
  dirs.push(dir);
  const objects = [0, 1, 2].map((i) => ({ kind: 'pack' as ObjectKind, hash: sha256Hex(Buffer.from(`o${i}`)), size: 2000 }));
  const book = ReceiptBook.open(dir);
  for (const o of objects) book.accept(signMessage<Receipt>({ type: 'mv.receipt.v1', site: SITE, repo: REPO, kind: o.kind, hash: o.hash, size: o.size, storedAt: 1 }, key), { site: SITE, controllerKey: key.publicKey });
  const link = new MemLink();
  const resent: Array<{ objects: unknown[]; suffix: string }> = [];
  const alerts: Array<{ state: string; message: string }> = [];
  const logs: string[] = [];
  const repo = { id: REPO, async *listObjects(kind: ObjectKind) { for (const o of objects) if (o.kind === kind) yield o; } };
  const req = new OffsiteRequests({
    site: SITE, repo, link, book, replicator: { resend: (o, suffix) => void resent.push({ objects: [...o], suffix }) },
    spool: { add: (_e, m) => void alerts.push(m as never) }, stateDir: dir, controllerKey: key.publicKey, now: () => clock.now, log: (_l, msg, f) => void logs.push(`${msg} ${JSON.stringify(f)}`),
  });
  return { dir, objects, book, link, resent, alerts, req, logs };
}

describe('OffsiteRequests', () => {
  it('resend: revokes durably, resends with the request suffix, alerts, resolves on fresh receipts', async () => {
    const { dir, objects, book, resent, alerts, req } = setup();
    const id = randomUUID();
    const r = signMessage<ResendRequest>({ type: 'mv.resend.v1', id, site: SITE, repo: REPO, objects: [{ kind: 'pack', hash: objects[1]!.hash }], reason: 'SHA-256 mismatch', at: 3 }, key);
    expect(await req.handle('resend', encode(r))).toEqual([{ kind: 'pack', hash: objects[1]!.hash }]);
    expect(resent).toEqual([{ objects: [{ kind: 'pack', hash: objects[1]!.hash }], suffix: `.r${id.slice(0, 8)}` }]);
    expect(book.has(REPO, 'pack', objects[1]!.hash)).toBe(false);
    expect(book.has(REPO, 'pack', objects[0]!.hash)).toBe(true);
    expect(ReceiptBook.read(dir).has(REPO, 'pack', objects[1]!.hash)).toBe(false); // journalled
    expect(alerts[0]).toMatchObject({ state: 'open', code: 'MV_ALERT_OFFSITE_RESEND' });
    expect(alerts[0]!.message).toContain(objects[1]!.hash);
    req.check();
    expect(alerts).toHaveLength(1);
    book.accept(signMessage<Receipt>({ type: 'mv.receipt.v1', site: SITE, repo: REPO, kind: 'pack', hash: objects[1]!.hash, size: 2000, storedAt: 9 }, key), { site: SITE, controllerKey: key.publicKey });
    req.check();
    expect(alerts[1]).toMatchObject({ state: 'resolved' });
    expect(ReceiptBook.read(dir).has(REPO, 'pack', objects[1]!.hash)).toBe(true);
  });

  it('refuses a request signed by another key or for another site, and changes nothing', async () => {
    const { objects, book, resent, req } = setup();
    const other = generateSigningKey();
    const bad = signMessage<ResendRequest>({ type: 'mv.resend.v1', id: randomUUID(), site: SITE, repo: REPO, objects: [{ kind: 'pack', hash: objects[0]!.hash }], reason: 'x', at: 3 }, other);
    expect(await req.handle('resend', encode(bad))).toEqual([]);
    const foreign = signMessage<ReconcileRequest>({ type: 'mv.reconcile.v1', id: randomUUID(), site: 'clinic-b', reason: 'x', at: 3 }, key);
    expect(await req.handle('reconcile', encode(foreign))).toEqual([]);
    expect(resent).toEqual([]);
    expect(book.covers(REPO, objects)).toBe(true);
  });

  it('refuses a replayed request (also after a restart) and one older than 24 h or from the future', async () => {
    const day = 24 * 3600_000;
    const clock = { now: 10 * day };
    const { dir, objects, resent, req, logs } = setup(undefined, clock);
    const resend = (id: string, at: number) => encode(signMessage<ResendRequest>({ type: 'mv.resend.v1', id, site: SITE, repo: REPO, objects: [{ kind: 'pack', hash: objects[0]!.hash }], reason: 'x', at }, key));
    const id = randomUUID();
    expect(await req.handle('resend', resend(id, clock.now - 1000))).toHaveLength(1);
    expect(await req.handle('resend', resend(id, clock.now - 1000))).toEqual([]);
    expect(logs.at(-1)).toContain(`mv.resend.v1 ${id} was already handled`);
    const again = setup(dir, clock); // a restarted agent still knows the id
    expect(await again.req.handle('resend', resend(id, clock.now - 1000))).toEqual([]);
    expect(again.logs.at(-1)).toContain('already handled');
    const old = randomUUID();
    expect(await req.handle('resend', resend(old, clock.now - day - 1))).toEqual([]);
    expect(logs.at(-1)).toContain(`mv.resend.v1 ${old} was sent at`);
    const reconcileOld = encode(signMessage<ReconcileRequest>({ type: 'mv.reconcile.v1', id: randomUUID(), site: SITE, reason: 'x', at: clock.now - 2 * day }, key));
    expect(await req.handle('reconcile', reconcileOld)).toEqual([]);
    expect(logs.at(-1)).toContain('more than 24 h ago');
    expect(await req.handle('resend', resend(randomUUID(), clock.now + 3600_000))).toEqual([]);
    expect(logs.at(-1)).toContain('in the future');
    expect(resent).toHaveLength(1);
    // ids older than the bound are forgotten (a replay of one is refused by its age anyway)
    clock.now += 2 * day;
    expect(await req.handle('resend', resend(randomUUID(), clock.now))).toHaveLength(1);
    expect(readFileSync(join(dir, 'offsite-requests-seen.json'), 'utf8')).not.toContain(id);
  });

  it('reconcile: what MV_OFFSITE lacks, whole or in part, is sent again', async () => {
    const { objects, link, resent, req } = setup();
    // Off site: object 0 whole (2 parts), object 1 with one of its two parts, object 2 not at all.
    for (const [i, keep] of [[0, 2], [1, 1]] as const) {
      const heads = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash: objects[i]!.hash, size: 2000 }, 1024);
      for (const h of heads.slice(0, keep)) await link.publish(subjects.offsite(SITE, REPO, 'pack', objects[i]!.hash), new Uint8Array(h.part === 0 ? 1024 : 976), { msgID: `${i}.${h.part}`, headers: { [OBJECT_HEADER]: encodePartHeader(h) } });
    }
    const r = signMessage<ReconcileRequest>({ type: 'mv.reconcile.v1', id: randomUUID(), site: SITE, reason: 'daily', at: 3 }, key);
    const sent = await req.handle('reconcile', encode(r));
    expect(sent.map((o) => o.hash).sort()).toEqual([objects[1]!.hash, objects[2]!.hash].sort());
    expect(resent[0]!.suffix).toBe(`.r${r.id.slice(0, 8)}`);
  });

  it('reconcile does not send again what the controller pruned; a pruned record signed by another key counts for nothing', async () => {
    const { objects, link, resent, req } = setup();
    // Nothing off site; object 0 pruned by the controller, object 1 "pruned" by a forger.
    const record = (i: number, k: typeof key) => signMessage<PrunedRecord>({ type: 'mv.pruned.v1', id: randomUUID(), site: SITE, repo: REPO, objects: [{ kind: 'pack', hash: objects[i]!.hash }], reason: 'off-site retention', at: 4 }, k);
    await link.publish(subjects.control(SITE, 'pruned'), encode(record(0, key)), { msgID: 'p0' });
    await link.publish(subjects.control(SITE, 'pruned'), encode(record(1, generateSigningKey())), { msgID: 'p1' });
    const r = signMessage<ReconcileRequest>({ type: 'mv.reconcile.v1', id: randomUUID(), site: SITE, reason: 'daily', at: 5 }, key);
    expect((await req.handle('reconcile', encode(r))).map((o) => o.hash).sort()).toEqual([objects[1]!.hash, objects[2]!.hash].sort());
    expect(resent).toHaveLength(1);
  });
});
