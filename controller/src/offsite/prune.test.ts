/**
 * Off-site pruning against a real nats-server and the real controller app: a dry run says per
 * snapshot why it is kept and deletes nothing; a legal hold (set over the API by a technician,
 * audited) survives a prune that would otherwise remove it; after a prune every retained snapshot's
 * objects are all still in MV_OFFSITE and verify; exactly the others are gone, named in a signed
 * mv.pruned.v1; one audit entry per run; the scrub after it finds no damage, also after a restart;
 * a pruned object a kept snapshot needs again is asked for and comes back; the periodic run
 * (prune_interval) applies [offsite.retention] and is audited as the scheduler; a purge that fails
 * ends the run with an error naming the subject, audited as failed, every kept snapshot still whole.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MedvaultError, codes, decode, encode, streams, subjects, verifyMessage, type ObjectKind, type ObjectRef } from '@medvault/protocol';
import { readChain } from '../audit/read.js';
import { REPO, SITE, addUser, call, controlMessages, login, randomObject, sendObject, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';
import { silentLog } from '../log.js';
import { checkCopy } from './copy.js';
import { startOffsiteCare } from './care.js';
import { offsiteConfigSchema } from './config.js';
import { Pruner } from './prune.js';
import { OFFSITE_DAMAGED } from './scrub.js';

let f: Fixture;
const obj: Record<string, { kind: ObjectKind; hash: string; size: number; data: Uint8Array }> = {};
const HOUR = 3_600_000;
const kinds: Record<string, ObjectKind> = { c: 'config', k: 'key', s1: 'snapshot', s2: 'snapshot', s3: 'snapshot', s4: 'snapshot', s5: 'snapshot', s6: 'snapshot', i1: 'index', i2: 'index' };
const ref = (n: string): ObjectRef => ({ kind: obj[n]!.kind, hash: obj[n]!.hash });
const lists: Record<string, string[]> = {
  s1: ['c', 'k', 's1', 'i1', 'p1', 'p2'],
  s2: ['c', 'k', 's2', 'i1', 'p2', 'p3'],
  s3: ['c', 'k', 's3', 'i2', 'p3', 'p4'],
};
const subject = (n: string) => subjects.offsite(SITE, REPO, obj[n]!.kind, obj[n]!.hash);
const id = (n: string) => ({ site: SITE, repo: REPO, ...ref(n) });
const pruner = (last: number, bus: Pick<Fixture['nats']['bus'], 'publish' | 'purgeSubject'> = f.nats.bus) =>
  new Pruner({
    bus, index: f.app.index, retention: f.app.retention, holds: () => f.app.holds.list(), scrub: f.app.offsite.scrub,
    policy: { last }, minAgeMs: HOUR, key: f.key, clock: () => f.now.value, log: silentLog(), audit: f.app.audit,
  });
async function publishNeeds(s: string, names: string[]): Promise<void> {
  await f.nats.bus.publish(subjects.event(SITE, 'needs'), encode({ type: 'mv.snapshot-needs.v1', site: SITE, repo: REPO, snapshot: obj[s]!.hash, time: f.now.value, store: 'records', tags: [], part: 0, parts: 1, objects: names.map(ref) }));
  await waitFor(() => f.app.retention.needs(SITE, REPO, obj[s]!.hash), 10_000, `needs list of ${s}`);
  await new Promise((r) => setTimeout(r, 5)); // distinct stream times
}
async function send(n: string, size: number): Promise<void> {
  const data = randomObject(size);
  const kind = kinds[n] ?? 'pack';
  const { hash } = await sendObject(f, data, { kind });
  obj[n] = { kind, hash, size, data };
}
/** Every object the named snapshots need is in MV_OFFSITE, whole and with the right SHA-256. */
async function allVerified(...snaps: string[]): Promise<void> {
  for (const s of snaps) for (const n of lists[s]!) expect(await checkCopy(f.nats.bus, subject(n), obj[n]!), `${s} needs ${n}`).toBeUndefined();
}
const pruneEntries = async () => (await readChain(f.nats.bus)).values.filter((e) => e.action === 'offsite.prune');

beforeAll(async () => {
  f = await startFixture();
  for (const n of ['c', 'k', 's1', 's2', 's3', 'i1', 'i2', 'p1', 'p2', 'p3', 'p5']) await send(n, 2000 + n.length);
  await send('p4', 2_500_000); // several parts
  await waitFor(() => Object.keys(obj).every((n) => f.app.index.get(id(n))), 30_000, 'receipts');
  for (const s of ['s1', 's2', 's3']) await publishNeeds(s, lists[s]!);
  f.now.value += 2 * HOUR; // every receipt older than min_age
  await addUser(f, 'tess', 'technician');
  await addUser(f, 'vic', 'viewer');
}, 60_000);

afterAll(async () => {
  await f?.dispose();
});

describe('off-site prune', () => {
  it('a dry run says per snapshot why it is kept, what would go and why, and deletes nothing', async () => {
    const r = await pruner(1).run({ dryRun: true });
    const p = r.plans.find((x) => x.site === SITE)!;
    expect(Object.fromEntries(p.snapshots.map((s) => [s.snapshot, s.reasons]))).toEqual({ [obj.s3!.hash]: ['last 1 of 1'], [obj.s1!.hash]: [], [obj.s2!.hash]: [] });
    expect(p.delete.map((e) => e.hash).sort()).toEqual(['s1', 's2', 'i1', 'p1', 'p2'].map((n) => obj[n]!.hash).sort());
    expect(r.deleted).toBe(0);
    for (const n of ['s1', 'p1', 'p2']) expect(await f.nats.bus.countSubject(streams.offsite.name, subject(n))).toBeGreaterThan(0);
    expect((await pruneEntries()).at(-1)!.detail).toMatchObject({ dryRun: true, planned: 5, deleted: 0 });
  });

  it('a legal hold survives the prune; retained snapshots stay whole and verified; the rest goes, recorded, audited; the scrub finds no damage, also after a restart', async () => {
    const tess = await login(f, 'tess');
    const vic = await login(f, 'vic');
    expect((await call(f, 'POST', '/api/v1/holds', { site: SITE, snapshot: obj.s2!.hash.slice(0, 12), reason: 'case 2025-17' }, vic)).status).toBe(403);
    expect((await call(f, 'POST', '/api/v1/holds', { site: SITE, snapshot: 'ffffffffffff', reason: 'case 2025-17' }, tess)).status).toBe(404);
    const held = await call(f, 'POST', '/api/v1/holds', { site: SITE, snapshot: obj.s2!.hash.slice(0, 12), reason: 'case 2025-17' }, tess);
    expect(held.status, held.text).toBe(201);
    expect(held.body).toMatchObject({ site: SITE, snapshot: obj.s2!.hash, active: true, by: 'tess' });
    expect((await call(f, 'POST', '/api/v1/holds', { site: SITE, snapshot: obj.s2!.hash, reason: 'again' }, tess)).status).toBe(409);
    expect((await call(f, 'GET', `/api/v1/holds?site=${SITE}`, undefined, vic)).body.holds.map((h: { snapshot: string }) => h.snapshot)).toEqual([obj.s2!.hash]);

    const before = (await controlMessages(f)).length;
    const r = await pruner(1).run();
    const p = r.plans.find((x) => x.site === SITE)!;
    expect(p.snapshots.find((s) => s.snapshot === obj.s2!.hash)!.reasons).toEqual(['legal hold']);
    expect(p.delete.map((e) => e.hash).sort()).toEqual([obj.s1!.hash, obj.p1!.hash].sort());
    expect(r.deleted).toBe(2);
    await allVerified('s2', 's3');
    for (const n of ['c', 'k', 'p5']) expect(await checkCopy(f.nats.bus, subject(n), obj[n]!)).toBeUndefined();
    for (const n of ['s1', 'p1']) {
      expect(await f.nats.bus.countSubject(streams.offsite.name, subject(n))).toBe(0);
      expect(f.app.index.get(id(n))).toBeUndefined();
    }
    // One signed record naming exactly what went, published before the purge.
    const sent = (await controlMessages(f)).slice(before);
    expect(sent.map((m) => m.subject)).toEqual([subjects.control(SITE, 'pruned')]);
    const rec = decode(sent[0]!.data, 'mv.pruned.v1');
    verifyMessage(rec, f.key.publicKey);
    expect(rec.objects.map((o) => o.hash).sort()).toEqual([obj.s1!.hash, obj.p1!.hash].sort());
    expect(rec.reason).toContain('which the policy drops');
    // Audited: the hold with the technician's id, the run with its counts and what went.
    const chain = (await readChain(f.nats.bus)).values;
    expect(chain.find((e) => e.action === 'hold.add')).toMatchObject({ actor: { kind: 'user', id: 'tess' }, object: `snapshot:${SITE}/${obj.s2!.hash}`, detail: { reason: 'case 2025-17' } });
    const audit = (await pruneEntries()).at(-1)!;
    expect(audit.detail).toMatchObject({ dryRun: false, deleted: 2, planned: 2, held: 1, snapshotsKept: 2, snapshotsDropped: 1, records: rec.id });
    expect(audit.detail!.objects).toContain(obj.p1!.hash);

    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
    await f.restart();
    expect(f.app.index.get(id('p1'))).toBeUndefined();
    expect(f.app.retention.pruned(id('p1'))?.id).toBe(rec.id);
    expect((await pruner(1).run()).deleted).toBe(0);
    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
    expect(f.app.health.alerts.list({ state: 'open', site: SITE }).filter((a) => a.code === OFFSITE_DAMAGED)).toEqual([]);
  }, 120_000);

  it('once the hold is lifted (audited), the next prune removes what only that snapshot needed', async () => {
    const tess = await login(f, 'tess');
    const lifted = await call(f, 'POST', '/api/v1/holds/remove', { site: SITE, snapshot: obj.s2!.hash, reason: 'case closed' }, tess);
    expect(lifted.body).toMatchObject({ active: false, removed: { by: 'tess', reason: 'case closed' } });
    expect((await call(f, 'POST', '/api/v1/holds/remove', { site: SITE, snapshot: obj.s2!.hash, reason: 'twice' }, tess)).status).toBe(404);
    const r = await pruner(1).run();
    expect(r.plans.find((x) => x.site === SITE)!.delete.map((e) => e.hash).sort()).toEqual(['s2', 'i1', 'p2'].map((n) => obj[n]!.hash).sort());
    await allVerified('s3');
    expect((await readChain(f.nats.bus)).values.find((e) => e.action === 'hold.remove')).toMatchObject({ actor: { id: 'tess' }, detail: { reason: 'case closed' } });
    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
  }, 60_000);

  it('a kept snapshot that needs a pruned object again gets it asked for, and it comes back', async () => {
    await send('s4', 2100);
    await waitFor(() => f.app.index.get(id('s4')), 10_000, 'receipt of s4');
    lists.s4 = ['c', 'k', 's4', 'i2', 'p1', 'p4'];
    await publishNeeds('s4', lists.s4);
    const before = (await controlMessages(f)).length;
    const r = await pruner(2).run();
    expect(r.plans.find((x) => x.site === SITE)!.reneeded).toEqual([{ repo: REPO, ...ref('p1'), snapshot: obj.s4!.hash }]);
    const resend = decode((await controlMessages(f)).slice(before).find((m) => m.subject === subjects.control(SITE, 'resend'))!.data, 'mv.resend.v1');
    expect(resend.objects).toEqual([ref('p1')]);
    await sendObject(f, obj.p1!.data, { msgIdSuffix: `.r${resend.id.slice(0, 8)}` });
    await waitFor(() => f.app.index.get(id('p1')) && !f.app.index.damage(id('p1')), 30_000, 'p1 receipted again');
    expect(f.app.retention.pruned(id('p1'))).toBeUndefined();
    await allVerified('s3', 's4');
  }, 60_000);

  it('runs every prune_interval with the [offsite.retention] policy, audited as the scheduler', async () => {
    const config = offsiteConfigSchema.parse({ prune_interval: 1, scrub_interval: 0, retention: { keep_last: 1, min_age: '1h' } });
    const care = await startOffsiteCare({
      bus: f.nats.bus, index: f.app.index, fleet: f.app.fleet, key: f.key, clock: () => f.now.value, log: silentLog(), audit: f.app.audit,
      retention: f.app.retention, holds: () => f.app.holds.list(), config,
    });
    try {
      const entry = await waitFor(async () => (await pruneEntries()).find((e) => e.actor.kind === 'scheduler'), 20_000, 'a scheduled prune');
      expect(entry).toMatchObject({ actor: { id: 'offsite-prune' }, detail: { dryRun: false } });
      // keep_last 1: s4 stays; s3 and p3, which only s3 needed, go (i2 and p4 are s4's too).
      await waitFor(async () => (await f.nats.bus.countSubject(streams.offsite.name, subject('s3'))) === 0, 20_000, 's3 pruned');
      expect(await f.nats.bus.countSubject(streams.offsite.name, subject('p3'))).toBe(0);
      await allVerified('s4');
    } finally {
      care.stop();
    }
    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
  }, 60_000);

  it('a purge that fails ends the run with an error naming the subject, audited as failed; kept snapshots stay whole', async () => {
    for (const n of ['s5', 'p6', 'p7', 's6']) await send(n, 3000);
    await waitFor(() => ['s5', 'p6', 'p7', 's6'].every((n) => f.app.index.get(id(n))), 30_000, 'receipts');
    lists.s5 = ['c', 'k', 's5', 'p6', 'p7'];
    lists.s6 = ['c', 'k', 's6', 'i2', 'p1', 'p4'];
    await publishNeeds('s5', lists.s5);
    await publishNeeds('s6', lists.s6);
    f.now.value += 2 * HOUR;
    // The real bus, except that purging p7's copy fails as a lost connection would.
    const faulty = {
      publish: f.nats.bus.publish.bind(f.nats.bus),
      purgeSubject: async (stream: string, subj: string) => {
        if (subj === subject('p7')) throw new MedvaultError(codes.TRANSPORT_FAILED, `cannot purge ${subj} from ${stream}: connection lost`);
        return f.nats.bus.purgeSubject(stream, subj);
      },
    };
    await expect(pruner(1, faulty).run()).rejects.toThrow(`cannot purge ${subject('p7')} from MV_OFFSITE`);
    const audit = (await pruneEntries()).at(-1)!;
    expect(audit.result).toBe('failed');
    expect(audit.detail!.error).toContain(subject('p7'));
    await allVerified('s6');
    expect(await f.nats.bus.countSubject(streams.offsite.name, subject('s5'))).toBe(0);
    // Listed as pruned, so the scrub does not take the copy it could not purge for damage.
    expect(f.app.index.get(id('p7'))).toBeUndefined();
    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
  }, 60_000);
});
