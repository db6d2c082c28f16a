/**
 * NATS access control against a real nats-server running the configuration the controller
 * generates (`medvault-controller nats-config`): TLS required, nkey users only, each site confined
 * to its own subjects and objects. Every way in that should be shut is tried and must be refused;
 * the agent's real adapter (Link) and the controller's (openNats) must still work.
 */
import { connect as tcpConnect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { readFileSync } from 'node:fs';
import { OBJECT_HEADER, encode, encodePartHeader, objectParts, sha256Hex, streams, subjects } from '@medvault/protocol';
import { openNats, type Nats } from '../../controller/src/nats.js';
import { openLink, type Link } from '../../agent/src/replicate/link.js';
import { startSecureNats, type SecureNats } from '../support/secure-nats.js';

const A = 'clinic-a';
const B = 'clinic-b';
const REPO = 'ab'.repeat(16);
const HASH = 'cd'.repeat(32);

let s: SecureNats;
let ctl: Nats;
const open: NatsConnection[] = [];

const seed = (file: string) => new TextEncoder().encode(readFileSync(file, 'utf8').trim());

/** A raw client as site `site` (or with `seedFile`), with the site's inbox prefix unless told otherwise. */
async function asSite(site: string, o: { seedFile?: string; inboxPrefix?: string } = {}): Promise<NatsConnection> {
  const nc = await connect({
    servers: s.url, tls: { caFile: s.caFile }, authenticator: nkeyAuthenticator(seed(o.seedFile ?? s.siteSeedFile[site]!)),
    inboxPrefix: o.inboxPrefix ?? `_INBOX.${site}`, maxReconnectAttempts: 0, timeout: 5000,
  });
  open.push(nc);
  return nc;
}

/** Resolves with the error text of a refused promise; fails the test if it was accepted. */
async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return String((err as Error).message ?? err);
  }
  throw new Error('accepted, but should have been refused');
}

beforeAll(async () => {
  s = await startSecureNats(mkdtempSync(join(tmpdir(), 'mv-natssec-')), [A, B]);
  ctl = await openNats({ servers: [s.url], nkeySeedFile: s.controllerSeedFile, caFile: s.caFile });
  await ctl.ensureStreams();
  // Something for each site on MV_CONTROL and MV_OFFSITE, as the controller would put there.
  for (const site of [A, B]) {
    await ctl.bus.publish(subjects.control(site, 'order'), encode({ secret: `order for ${site}` }));
    await ctl.bus.publish(subjects.offsite(site, REPO, 'pack', HASH), new TextEncoder().encode(`offsite bytes of ${site}`));
  }
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await ctl?.close();
  await s?.server.dispose();
  rmSync(s.dir, { recursive: true, force: true });
});

describe('the generated nats-server configuration', () => {
  it('refuses a client without credentials', async () => {
    expect(await refused(connect({ servers: s.url, tls: { caFile: s.caFile }, maxReconnectAttempts: 0, timeout: 5000 }))).toMatch(/authoriz|auth/i);
  });

  it('refuses wrong credentials: an nkey it does not know', async () => {
    const stranger = createUser();
    expect(await refused(connect({ servers: s.url, tls: { caFile: s.caFile }, authenticator: nkeyAuthenticator(stranger.getSeed()), maxReconnectAttempts: 0, timeout: 5000 }))).toMatch(/authoriz|auth/i);
  });

  it('refuses plaintext: the server demands TLS before anything else', async () => {
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const sock = tcpConnect(s.server.port, '127.0.0.1', () => {
        // A plaintext CONNECT as an old or misconfigured client would send it.
        sock.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\nPUB mv.v1.ev.clinic-a.log 2\r\nhi\r\nPING\r\n');
      });
      sock.on('data', (d) => (got += d));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
      setTimeout(() => sock.destroy(), 5000).unref();
    });
    expect(answer).toMatch(/"tls_required":true/);
    expect(answer).not.toMatch(/PONG/);
  });

  it('refuses a TLS connection to a server whose certificate is not from the pinned CA', async () => {
    // The system trust store does not know the private CA: without pinning it, TLS fails.
    expect(await refused(connect({ servers: s.url, authenticator: nkeyAuthenticator(seed(s.siteSeedFile[A]!)), maxReconnectAttempts: 0, timeout: 5000 }))).toMatch(/certificate|self.signed|TLS|unable/i);
  });

  it("lets a site's agent do its whole job through the real adapter: publish its objects and events, follow its control stream", async () => {
    const link: Link = await openLink({ servers: [s.url], name: 'test agent', site: A, nkeySeedFile: s.siteSeedFile[A]!, caFile: s.caFile, ackTimeoutMs: 5000 });
    try {
      const data = new TextEncoder().encode('pack bytes');
      const [h] = objectParts({ site: A, repo: REPO, kind: 'pack', hash: sha256Hex(data), size: data.byteLength });
      await link.publish(subjects.inbox(A, REPO, 'pack', sha256Hex(data)), data, { msgID: 'x1', headers: { [OBJECT_HEADER]: encodePartHeader(h!) } });
      await link.publish(subjects.event(A, 'heartbeat'), encode({ hb: 1 }), { msgID: 'x2' });
      const got: string[] = [];
      let f: { stop(): Promise<void> } | undefined;
      await new Promise<void>((resolve, reject) => {
        f = link.follow(streams.control.name, subjects.controlPattern(A, '*'), 1, async (m) => {
          got.push(Buffer.from(m.data).toString());
          resolve();
        });
        setTimeout(() => reject(new Error('follow did not deliver')), 10_000).unref();
      });
      await f!.stop();
      expect(got[0]).toContain(`order for ${A}`);
      expect(await ctl.bus.countSubject(streams.events.name, subjects.event(A, 'heartbeat'))).toBe(1);
    } finally {
      await link.close();
    }
  });

  describe("a site's credentials refuse another site's subjects and objects", () => {
    it("publishing another site's objects or events, or any off-site copy, control message or audit entry", async () => {
      const nc = await asSite(A);
      const js = jetstream(nc, { timeout: 3000 });
      for (const subject of [
        subjects.inbox(B, REPO, 'pack', HASH), subjects.event(B, 'heartbeat'), subjects.event(B, 'audit'),
        subjects.offsite(A, REPO, 'pack', HASH), subjects.offsite(B, REPO, 'pack', HASH),
        subjects.control(A, 'order'), subjects.control(B, 'receipt'), subjects.controllerAudit(),
      ]) {
        expect(await refused(js.publish(subject, encode({ forged: true }))), subject).toMatch(/permission/i);
      }
      expect(await ctl.bus.countSubject(streams.inbox.name, subjects.inbox(B, REPO, 'pack', HASH))).toBe(0);
    });

    it("reading another site's control stream or off-site copies, by consumer, by subscription or through its inbox", async () => {
      const nc = await asSite(A);
      const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 3000 });
      const cfg = (filter: string) => ({ name: `snoop_${Math.random().toString(36).slice(2, 8)}`, filter_subject: filter, ack_policy: 'none' as never, deliver_policy: 'all' as never });
      expect(await refused(jsm.consumers.add(streams.control.name, cfg(subjects.controlPattern(B, '*'))))).toMatch(/permission/i);
      expect(await refused(jsm.consumers.add(streams.control.name, cfg('mv.v1.ctl.>')))).toMatch(/permission/i);
      expect(await refused(jsm.consumers.add(streams.offsite.name, cfg(subjects.offsitePattern(B))))).toMatch(/permission/i);
      expect(await refused(jsm.consumers.add(streams.events.name, cfg(subjects.eventPattern(B))))).toMatch(/permission/i);
      expect(await refused(jsm.consumers.add(streams.inbox.name, cfg(subjects.inboxPattern(A))))).toMatch(/permission/i);
      // A create subject naming its own filter but a body asking for another site's: the server refuses the mismatch.
      const lie = await nc.request(`$JS.API.CONSUMER.CREATE.${streams.control.name}.lie.mv.v1.ctl.${A}.*`, encode({ stream_name: streams.control.name, config: { name: 'lie', filter_subject: `mv.v1.ctl.${B}.*`, ack_policy: 'none', deliver_policy: 'all' } }), { timeout: 3000 });
      expect(JSON.parse(Buffer.from(lie.data).toString()).error?.description ?? '').toMatch(/filter/i);
      // A push consumer on its own messages that delivers into another site's subjects injects nothing there.
      const before = await ctl.bus.countSubject(streams.inbox.name, subjects.inbox(B, REPO, 'pack', HASH));
      await jsm.consumers
        .add(streams.control.name, { ...cfg(subjects.controlPattern(A, '*')), deliver_subject: subjects.inbox(B, REPO, 'pack', HASH) } as never)
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await ctl.bus.countSubject(streams.inbox.name, subjects.inbox(B, REPO, 'pack', HASH))).toBe(before);
      // Plain subscriptions to stream subjects and to another site's inbox.
      for (const subject of [subjects.controlPattern(B, '*'), subjects.offsitePattern(B), 'mv.v1.>', `_INBOX.${B}.>`, '>']) {
        const sub = nc.subscribe(subject);
        expect(await refused((async () => { for await (const _ of sub) break; })()), subject).toMatch(/permission/i);
      }
      // Connecting with another site's inbox prefix gets no replies at all: every request fails.
      const sneaky = await asSite(A, { inboxPrefix: `_INBOX.${B}` });
      expect(await refused(jetstream(sneaky, { timeout: 2000 }).publish(subjects.event(A, 'log'), encode({})))).toMatch(/permission|timeout/i);
    });

    it('managing streams, consumers, messages or buckets: purge, delete, update, message delete, list, KV', async () => {
      const nc = await asSite(A);
      for (const [subject, body] of [
        [`$JS.API.STREAM.PURGE.${streams.offsite.name}`, {}], [`$JS.API.STREAM.PURGE.${streams.inbox.name}`, { filter: subjects.inboxPattern(B) }],
        [`$JS.API.STREAM.DELETE.${streams.events.name}`, {}], [`$JS.API.STREAM.UPDATE.${streams.offsite.name}`, { name: streams.offsite.name, subjects: ['x.>'] }],
        [`$JS.API.STREAM.MSG.DELETE.${streams.offsite.name}`, { seq: 1 }], [`$JS.API.STREAM.MSG.GET.${streams.offsite.name}`, { seq: 1 }],
        [`$JS.API.STREAM.INFO.${streams.control.name}`, { subjects_filter: '>' }], [`$JS.API.STREAM.CREATE.EVIL`, { name: 'EVIL', subjects: ['mv.v1.in.clinic-b.>'] }],
        [`$JS.API.CONSUMER.DELETE.${streams.inbox.name}.ingest`, {}], [`$JS.API.CONSUMER.LIST.${streams.control.name}`, {}], [`$JS.API.CONSUMER.NAMES.${streams.control.name}`, {}],
        ['$JS.API.STREAM.NAMES', {}], ['$JS.API.INFO', {}], ['$KV.MV_USERS.tess', {}], ['$JS.API.DIRECT.GET.KV_MV_USERS', {}],
      ] as const) {
        expect(await refused(nc.request(subject, encode(body), { timeout: 2000 })), subject).toMatch(/permission/i);
      }
      // The off-site copies are all still there.
      expect(await ctl.bus.countSubject(streams.offsite.name, subjects.offsite(B, REPO, 'pack', HASH))).toBe(1);
    });

    it("site B's own credentials cannot act as site A either", async () => {
      const nc = await asSite(B);
      expect(await refused(jetstream(nc, { timeout: 3000 }).publish(subjects.event(A, 'status'), encode({})))).toMatch(/permission/i);
    });
  });
});
