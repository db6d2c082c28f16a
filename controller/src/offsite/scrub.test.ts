/**
 * The scrub against a real nats-server and the real controller app: a damaged off-site copy is
 * found, purged, alerted (naming site, repo, kind, hash), asked for again with a signed
 * mv.resend.v1 (and a reconcile request), stays flagged across a restart, is stored again when
 * the site resends it, and its alert resolves. Only that object is touched; the rate limit holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_HEADER, decode, encodePartHeader, objectParts, streams, subjects, verifyMessage } from '@medvault/protocol';
import { REPO, SITE, controlMessages, heartbeat, publishEvent, randomObject, sendObject, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';
import { silentLog } from '../log.js';
import { checkCopy } from './copy.js';
import { OFFSITE_DAMAGED, Scrub } from './scrub.js';

let f: Fixture;
const objs: { hash: string; size: number; data: Uint8Array }[] = [];
const id = (i: number) => ({ site: SITE, repo: REPO, kind: 'pack' as const, hash: objs[i]!.hash });
const subject = (i: number) => subjects.offsite(SITE, REPO, 'pack', objs[i]!.hash);

beforeAll(async () => {
  f = await startFixture();
  for (const size of [300_000, 2_500_000, 1000]) {
    const data = randomObject(size);
    const { hash } = await sendObject(f, data);
    objs.push({ hash, size, data });
  }
  await waitFor(() => objs.every((_, i) => f.app.index.get(id(i))), 30_000, 'receipts');
  await publishEvent(f, SITE, 'heartbeat', heartbeat(SITE, f.now.value));
}, 60_000);

afterAll(async () => {
  await f?.dispose();
});

describe('scrub', () => {
  it('finds nothing wrong with good copies', async () => {
    const r = await f.app.offsite.scrubNow();
    expect(r.objects).toBe(3);
    expect(r.damaged).toEqual([]);
  });

  it('finds a copy whose bytes were overwritten, purges it, alerts, asks for it again; a resend heals it', async () => {
    // Overwrite object 1's stored bytes: purge, then the same part headers with wrong payloads.
    const { hash, size } = objs[1]!;
    await f.nats.bus.purgeSubject(streams.offsite.name, subject(1));
    for (const h of objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size })) {
      await f.nats.bus.publish(subject(1), randomObject(h.part === h.parts - 1 ? size - h.part * h.partSize : h.partSize), { headers: { [OBJECT_HEADER]: encodePartHeader(h) } });
    }
    const before = (await controlMessages(f)).length;
    const r = await f.app.offsite.scrubNow();
    expect(r.damaged.map((d) => [d.site, d.repo, d.kind, d.hash])).toEqual([[SITE, REPO, 'pack', hash]]);
    expect(r.damaged[0]!.problem).toMatch(/SHA-256/);
    expect(await f.nats.bus.countSubject(streams.offsite.name, subject(1))).toBe(0);
    // The other copies are untouched.
    for (const i of [0, 2]) expect(await checkCopy(f.nats.bus, subject(i), objs[i]!)).toBeUndefined();
    // A signed resend naming exactly that object, then a reconcile request.
    const sent = (await controlMessages(f)).slice(before);
    expect(sent.map((m) => m.subject)).toEqual([subjects.control(SITE, 'resend'), subjects.control(SITE, 'reconcile')]);
    const resend = decode(sent[0]!.data, 'mv.resend.v1');
    verifyMessage(resend, f.key.publicKey);
    expect(resend.objects).toEqual([{ kind: 'pack', hash }]);
    verifyMessage(decode(sent[1]!.data, 'mv.reconcile.v1'), f.key.publicKey);
    // An alert naming site, repo, kind and hash.
    const alert = await waitFor(() => f.app.health.alerts.list({ state: 'open', site: SITE }).find((a) => a.code === OFFSITE_DAMAGED), 10_000, 'alert');
    expect(alert.key).toBe(`offsite:${REPO}/pack/${hash}`);
    expect(alert.message).toContain(hash);
    expect(alert.message).toContain(REPO);
    expect(alert.message).toContain(SITE);
    // The flag is durable: a restarted controller rebuilds it from MV_CONTROL.
    await f.restart();
    expect(f.app.index.damage(id(1))?.request).toBe(resend.id);
    // The site sends it again (message ids suffixed, as the agent does): stored and receipted again.
    await sendObject(f, objs[1]!.data, { msgIdSuffix: `.r${resend.id.slice(0, 8)}` });
    await waitFor(() => f.app.index.damage(id(1)) === undefined, 30_000, 'a fresh receipt');
    expect(await checkCopy(f.nats.bus, subject(1), objs[1]!)).toBeUndefined();
    await waitFor(() => !f.app.health.alerts.list({ state: 'open', site: SITE }).some((a) => a.code === OFFSITE_DAMAGED), 10_000, 'alert resolved');
    expect((await f.app.offsite.scrubNow()).damaged).toEqual([]);
  }, 120_000);

  it('finds a copy with a part missing, and reads at the configured rate', async () => {
    // As the controller: purge object 1 (three parts) and store only its first part again.
    const { hash, size, data } = objs[1]!;
    await f.nats.bus.purgeSubject(streams.offsite.name, subject(1));
    const [h] = objectParts({ site: SITE, repo: REPO, kind: 'pack', hash, size });
    await f.nats.bus.publish(subject(1), data.subarray(0, h!.partSize), { headers: { [OBJECT_HEADER]: encodePartHeader(h!) } });
    const rate = 1024 * 1024;
    const scrub = new Scrub({ bus: f.nats.bus, index: f.app.index, key: f.key, clock: () => f.now.value, log: silentLog(), rate });
    const t0 = Date.now();
    const r = await scrub.pass([SITE]);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.damaged.map((d) => [d.hash, d.problem])).toEqual([[hash, `${h!.parts - 1} of ${h!.parts} parts missing`]]);
    // 300 kB + 1 kB + one part of ~1 MB read back at 1 MiB/s.
    expect(seconds).toBeGreaterThan((objs[0]!.size + objs[2]!.size + h!.partSize) / rate - 0.2);
  }, 60_000);
});
