/**
 * Immutability of the off-site copy (issue #6 point 1), against a real TLS nats-server running the
 * configuration the controller generates: with a site's own credentials every way of changing,
 * removing or overwriting what MV_OFFSITE holds, and every way of reaching past its own subjects,
 * is tried; each must fail, and the off-site copy (message count, bytes, every subject's count,
 * first and last sequence, as the controller sees them) must be exactly what it was before.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { OBJECT_HEADER, encode, encodePartHeader, objectParts, sha256Hex, streams, subjects } from '@medvault/protocol';
import { openNats, type Nats } from '../../controller/src/nats.js';
import { startSecureNats, type SecureNats } from '../support/secure-nats.js';

const A = 'clinic-a';
const B = 'clinic-b';
const REPO = 'ab'.repeat(16);
const OFF = streams.offsite.name;

let s: SecureNats;
let ctl: Nats;
let ctlJsm: JetStreamManager;
const open: NatsConnection[] = [];
const objects: Record<string, { hash: string; subject: string }> = {};

const seed = (file: string) => new TextEncoder().encode(readFileSync(file, 'utf8').trim());

async function client(seedFile: string, inboxPrefix?: string): Promise<NatsConnection> {
  const nc = await connect({ servers: s.url, tls: { caFile: s.caFile }, authenticator: nkeyAuthenticator(seed(seedFile)), maxReconnectAttempts: 0, timeout: 5000, ...(inboxPrefix ? { inboxPrefix } : {}) });
  open.push(nc);
  return nc;
}

/** What the controller sees of MV_OFFSITE, MV_INBOX and MV_CONTROL: any change at all shows here. */
async function state(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const name of [OFF, streams.inbox.name, streams.control.name]) {
    const i = await ctlJsm.streams.info(name, { subjects_filter: '>' });
    out[name] = { messages: i.state.messages, bytes: i.state.bytes, first: i.state.first_seq, last: i.state.last_seq, subjects: i.state.subjects ?? {}, config: { ...i.config, subjects: i.config.subjects } };
  }
  return out;
}

/** A JetStream API request's outcome: 'refused: …' (permission, timeout or API error) or 'ACCEPTED'. */
async function attempt(nc: NatsConnection, subject: string, body: unknown): Promise<string> {
  try {
    const r = await nc.request(subject, encode(body as object), { timeout: 2000 });
    const reply = JSON.parse(Buffer.from(r.data).toString() || '{}') as { error?: { description?: string } };
    return reply.error ? `refused: ${reply.error.description}` : `ACCEPTED ${Buffer.from(r.data).toString().slice(0, 200)}`;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

beforeAll(async () => {
  s = await startSecureNats(mkdtempSync(join(tmpdir(), 'mv-immut-')), [A, B]);
  ctl = await openNats({ servers: [s.url], nkeySeedFile: s.controllerSeedFile, caFile: s.caFile });
  await ctl.ensureStreams();
  ctlJsm = await jetstreamManager(await client(s.controllerSeedFile));
  // Real off-site copies as the Ingestor stores them: three parts each, header Mv-Object.
  for (const site of [A, B]) {
    const bytes = new Uint8Array(2 * 1024 + 100).map((_, i) => (i * 7 + site.length) & 255);
    const hash = sha256Hex(bytes);
    const subject = subjects.offsite(site, REPO, 'pack', hash);
    const parts = objectParts({ site, repo: REPO, kind: 'pack', hash, size: bytes.byteLength }, 1024);
    for (const p of parts) {
      await ctl.bus.publish(subject, bytes.subarray(p.part * 1024, (p.part + 1) * 1024), { msgId: `${site}.${p.part}`, headers: { [OBJECT_HEADER]: encodePartHeader(p) } });
    }
    objects[site] = { hash, subject };
  }
}, 60_000);

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await ctl?.close();
  await s?.server.dispose();
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

describe("the off-site copy is immutable to a site's credentials", () => {
  it('every attempt to delete, purge, overwrite, reconfigure or read past its own subjects fails, and nothing changed', async () => {
    const before = await state();
    const nc = await client(s.siteSeedFile[A]!, `_INBOX.${A}`);
    const own = objects[A]!.subject;
    const other = objects[B]!.subject;
    const cfg = (filter: string, extra: object = {}) => ({ stream_name: OFF, config: { name: 'evil', filter_subject: filter, ack_policy: 'none', deliver_policy: 'all', ...extra } });
    const tries: Array<[string, string, unknown]> = [
      ['delete a message', `$JS.API.STREAM.MSG.DELETE.${OFF}`, { seq: 1 }],
      ['erase a message', `$JS.API.STREAM.MSG.DELETE.${OFF}`, { seq: 2, no_erase: false }],
      ['purge the stream', `$JS.API.STREAM.PURGE.${OFF}`, {}],
      ['purge its own subject', `$JS.API.STREAM.PURGE.${OFF}`, { filter: own }],
      ['purge its own site', `$JS.API.STREAM.PURGE.${OFF}`, { filter: subjects.offsitePattern(A) }],
      ['purge keeping none', `$JS.API.STREAM.PURGE.${OFF}`, { filter: other, keep: 0 }],
      ['update the stream (allow delete, 1 message)', `$JS.API.STREAM.UPDATE.${OFF}`, { name: OFF, subjects: ['mv.v1.off.>'], deny_delete: false, max_msgs: 1 }],
      ['delete the stream', `$JS.API.STREAM.DELETE.${OFF}`, {}],
      ['create a stream sourcing it', '$JS.API.STREAM.CREATE.EVIL', { name: 'EVIL', subjects: ['evil.>'], sources: [{ name: OFF }] }],
      ["consumer on another site's off-site copies", `$JS.API.CONSUMER.CREATE.${OFF}.evil.mv.v1.off.${B}.>`, cfg(subjects.offsitePattern(B))],
      ['consumer naming its own filter in the subject, another in the body', `$JS.API.CONSUMER.CREATE.${OFF}.evil.mv.v1.off.${A}.>`, cfg(subjects.offsitePattern(B))],
      ['consumer without a filter', `$JS.API.CONSUMER.CREATE.${OFF}`, cfg('')],
      ['durable consumer', `$JS.API.CONSUMER.DURABLE.CREATE.${OFF}.evil`, cfg(subjects.offsitePattern(A), { durable_name: 'evil' })],
      ['consumer on MV_INBOX', `$JS.API.CONSUMER.CREATE.${streams.inbox.name}.evil.mv.v1.in.${A}.>`, { stream_name: streams.inbox.name, config: { name: 'evil', filter_subject: subjects.inboxPattern(A), ack_policy: 'explicit', deliver_policy: 'all' } }],
      ['consumer on MV_EVENTS', `$JS.API.CONSUMER.CREATE.${streams.events.name}.evil.mv.v1.ev.${A}.heartbeat`, { stream_name: streams.events.name, config: { name: 'evil', filter_subject: subjects.event(A, 'heartbeat'), ack_policy: 'none', deliver_policy: 'all' } }],
      ['direct get', `$JS.API.DIRECT.GET.${OFF}`, { seq: 1 }],
      ['direct get by subject', `$JS.API.DIRECT.GET.${OFF}.${other}`, {}],
      ['message get', `$JS.API.STREAM.MSG.GET.${OFF}`, { last_by_subj: other }],
      ['stream info', `$JS.API.STREAM.INFO.${OFF}`, { subjects_filter: '>' }],
      ['consumer list', `$JS.API.CONSUMER.LIST.${OFF}`, {}],
      ['consumer names', `$JS.API.CONSUMER.NAMES.${OFF}`, {}],
      ['consumer delete', `$JS.API.CONSUMER.DELETE.${streams.inbox.name}.mv-controller-ingest`, {}],
      ["ack or terminate the controller's inbox deliveries", `$JS.ACK.${streams.inbox.name}.mv-controller-ingest.1.1.1.0.0`, {}],
    ];
    const accepted: string[] = [];
    for (const [what, subject, body] of tries) {
      const outcome = await attempt(nc, subject, body);
      if (!outcome.startsWith('refused')) accepted.push(`${what} (${subject}): ${outcome}`);
    }
    // A push consumer on its own copies that delivers into its own off-site subject (an overwrite by
    // the server's hand), its control stream or another site's inbox. nats-server 2.9 does not check
    // a deliver subject against the creator's permissions (the body is not in the subject), so the
    // create itself may succeed; what matters is that nothing it delivers is ever stored anywhere:
    // the server delivers only where there is interest, and a stream's capture is not interest
    // (asserted by the unchanged state below, after waiting for deliveries).
    const pushed: string[] = [];
    for (const [i, deliver] of [own, subjects.control(A, 'receipt'), subjects.inbox(B, REPO, 'pack', objects[B]!.hash)].entries()) {
      const outcome = await attempt(nc, `$JS.API.CONSUMER.CREATE.${OFF}.push${i}.mv.v1.off.${A}.>`, cfg(subjects.offsitePattern(A), { name: `push${i}`, deliver_subject: deliver }));
      pushed.push(`${deliver}: ${outcome.slice(0, 80)}`);
    }
    // Publishing over its own off-site copy and into another site's inbox, through JetStream and plain.
    const js = jetstream(nc, { timeout: 2000 });
    const data = new TextEncoder().encode('overwritten');
    for (const subject of [own, subjects.offsite(A, REPO, 'pack', 'ee'.repeat(32)), subjects.inbox(B, REPO, 'pack', objects[B]!.hash)]) {
      const outcome = await js.publish(subject, data, { msgID: 'evil' }).then((a) => `ACCEPTED seq ${a.seq}`, (e: Error) => `refused: ${e.message}`);
      if (!outcome.startsWith('refused')) accepted.push(`publish ${subject}: ${outcome}`);
      nc.publish(subject, data);
    }
    await nc.flush().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000)); // anything a push consumer would deliver has arrived by now
    expect(pushed[0]).toMatch(/refused/); // into its own off-site subject: a cycle
    expect(accepted).toEqual([]);
    expect(await state()).toEqual(before);
    // And the copies still read back whole, with their hashes.
    for (const site of [A, B]) {
      const msgs = await ctl.bus.readSubject(OFF, objects[site]!.subject, 10);
      expect(msgs.length).toBe(3);
      expect(sha256Hex(...msgs.map((m) => m.data))).toBe(objects[site]!.hash);
    }
  }, 120_000);

  it("still lets the site list its own off-site copy, headers only, with the consumer its agent uses", async () => {
    const nc = await client(s.siteSeedFile[A]!, `_INBOX.${A}`);
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 3000 });
    const name = `mv_${A}_list`;
    await jsm.consumers.add(OFF, { name, filter_subject: subjects.offsitePattern(A), ack_policy: 'none' as never, deliver_policy: 'all' as never, headers_only: true, mem_storage: true, num_replicas: 1, inactive_threshold: 10_000_000_000 });
    const c = await jetstream(nc).consumers.get(OFF, name);
    const got: string[] = [];
    const it = await c.consume({ max_messages: 8 });
    for await (const m of it) {
      got.push(m.subject);
      expect(m.data.byteLength).toBe(0);
      if (m.info.pending === 0) break;
    }
    expect(got).toEqual([objects[A]!.subject, objects[A]!.subject, objects[A]!.subject]);
  }, 60_000);
});
