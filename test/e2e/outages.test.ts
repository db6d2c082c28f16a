/**
 * Replication through outages, exactly once, on a real secure fleet (TLS nats-server, controller
 * and agent as processes): (a) nats-server killed with SIGKILL mid-replication while records keep
 * changing and backups keep running locally, then restarted on the same store; (b) the agent
 * killed with SIGKILL mid-replication and restarted (the outbox is the repository: it survives);
 * (c) nats-server stopped with SIGSTOP past the agent's ack timeout, then SIGCONT. After each, the
 * controller holds every local object exactly once: per subject in MV_OFFSITE exactly `parts`
 * messages, one per part; exactly one receipt per object; every local object receipted; nothing
 * left in the inbox; no off-site subject without a local object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { OBJECT_HEADER, decode, decodePart, type ObjectKind } from '@medvault/protocol';
import { DirStore } from '../../agent/src/store/dir-store.js';
import { ReceiptBook } from '../../agent/src/replicate/receipts.js';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

const MiB = 1024 * 1024;

describe('replication through outages, exactly once', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const ws = useFleet('outages', async (ws, start) => {
    mkdirSync(store, { recursive: true });
    fleet = await start({ site: 'clinic-a', store });
    nc = await connect({ ...fleet.natsOptions(), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    jsm = await jetstreamManager(nc);
  }, 180_000);
  const store = join(ws, 'records');
  const stateDir = join(ws, 'appliance', 'state');
  let batch = 0;

  /** New incompressible records: `files` of `bytes` each. */
  const writeRecords = (files: number, bytes: number) => {
    const dir = join(store, `batch-${++batch}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < files; i++) writeFileSync(join(dir, `scan-${i}.dcm`), randomBytes(bytes));
  };
  /** A backup from the CLI; while the daemon runs one of its own it holds the writer lock (exit 4): wait for it. */
  const backup = async () => {
    const r = await until('the writer lock', async () => {
      const x = await fleet.agent('backup', 'records');
      return x.code === 4 ? undefined : x;
    }, 120_000, 1000);
    return must(r, 'medvault-agent backup records');
  };
  // The test's own requests retry while a restarted server is still recovering its streams.
  const streamInfo = (stream: string, filter?: string) =>
    until(`${stream} info`, () => jsm.streams.info(stream, filter ? { subjects_filter: filter } : undefined).catch(() => undefined), 60_000, 500);
  const subjectsIn = async (stream: string, filter: string) => (await streamInfo(stream, filter)).state.subjects ?? {};
  const offsiteMessages = async () => (await streamInfo('MV_OFFSITE')).state.messages;

  /** New records backed up, the daemon running, and their first objects arriving off site. */
  const newBackupReplicating = async () => {
    if (!fleet.agentDaemon?.running) fleet.startAgent();
    writeRecords(32, 2 * MiB);
    await backup();
    const before = await offsiteMessages();
    await until('new objects arriving off site', async () => ((await offsiteMessages()) > before ? true : undefined), 120_000, 50);
  };

  /** Every object in the repository folder, as `<kind>.<hash>` (config: SHA-256 of its bytes). */
  const localObjects = async (): Promise<Set<string>> => {
    const s = new DirStore(join(ws, 'disk1', 'medvault'));
    const out = new Set<string>();
    const config = await s.get('config', 'config');
    if (config) out.add(`config.${createHash('sha256').update(config).digest('hex')}`);
    for (const kind of ['key', 'pack', 'index', 'snapshot'] as const) for await (const e of s.list(kind)) out.add(`${kind}.${e.name}`);
    return out;
  };

  /** Every message on `subject` in `stream`, in order (a controller-credential ordered consumer). */
  const readAll = async (stream: string, subject: string) => {
    const js = jetstream(nc);
    const n = Object.values(await subjectsIn(stream, subject)).reduce((a, b) => a + b, 0);
    const out: { subject: string; data: Uint8Array }[] = [];
    if (n === 0) return out;
    const c = await js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
    const msgs = await c.consume({ max_messages: 256 });
    for await (const m of msgs) {
      out.push({ subject: m.subject, data: m.data });
      if (m.info.pending === 0) break;
    }
    msgs.stop();
    return out;
  };

  /** Waits until every local object is receipted, then checks that each is off site exactly once. */
  const expectExactlyOnce = async () => {
    const site = fleet.site;
    const local = await localObjects();
    const repo = await until('the repository id from the off-site stream', async () => {
      const subs = Object.keys(await subjectsIn('MV_OFFSITE', `mv.v1.off.${site}.>`));
      return subs[0]?.split('.')[4];
    });
    await until('every local object receipted', () => {
      const book = ReceiptBook.read(stateDir);
      return [...local].every((o) => book.has(repo, o.split('.')[0] as ObjectKind, o.split('.')[1]!)) ? true : undefined;
    }, 300_000, 1000);
    // A part whose ack was lost in the outage comes back after the consumer's ack wait (2 min) and is acked as a duplicate.
    let inbox: Record<string, number> = {};
    await until('the inbox empty', async () => {
      inbox = await subjectsIn('MV_INBOX', `mv.v1.in.${site}.>`);
      return Object.keys(inbox).length === 0 ? true : undefined;
    }, 240_000, 1000).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(inbox)}`);
    });
    // MV_OFFSITE: exactly the local objects, each with exactly its parts, once each.
    const subjects = await subjectsIn('MV_OFFSITE', `mv.v1.off.${site}.>`);
    const prefix = `mv.v1.off.${site}.${repo}.`;
    expect(Object.keys(subjects).map((s) => s.slice(prefix.length)).sort()).toEqual([...local].sort());
    for (const [subject, count] of Object.entries(subjects)) {
      const last = await jsm.streams.getMessage('MV_OFFSITE', { last_by_subj: subject });
      const p = decodePart(last!.header?.get(OBJECT_HEADER), last!.data.byteLength);
      expect(count, `${subject}: ${count} messages for ${p.parts} parts`).toBe(p.parts);
      if (count > 1) {
        const parts = (await readAll('MV_OFFSITE', subject)).length;
        expect(parts).toBe(p.parts);
      }
    }
    // Exactly one receipt per object.
    const receipts = (await readAll('MV_CONTROL', `mv.v1.ctl.${site}.receipt`)).map((m) => decode(m.data, 'mv.receipt.v1'));
    const perObject = new Map<string, number>();
    for (const r of receipts) perObject.set(`${r.kind}.${r.hash}`, (perObject.get(`${r.kind}.${r.hash}`) ?? 0) + 1);
    expect([...perObject.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect([...perObject.keys()].sort()).toEqual([...local].sort());
    return local;
  };

  // A test that failed midway must not leave the next one without a server or an agent.
  beforeEach(async () => {
    fleet.nats.resume();
    if (!fleet.nats.running) await fleet.nats.restart();
  });

  afterAll(() => nc?.close().catch(() => undefined));

  it('(a) nats-server killed mid-replication while backups go on locally, then restarted on the same store', async () => {
    onTestFailed(() => console.log(fleet.output(), fleet.nats.output.slice(-3000)));
    writeRecords(48, 2 * MiB);
    await backup();
    fleet.startAgent();
    const before = await until('the first objects off site', async () => ((await offsiteMessages()) > 0 ? offsiteMessages() : undefined), 120_000, 50);
    await fleet.nats.stop(true);
    const snapshots = async () => must(await fleet.agent('snapshots'), 'medvault-agent snapshots').snapshots as { hash: string; offsite: string }[];
    const atKill = (await snapshots()).length;
    // The clinic goes on: records change and backups run, with NATS down.
    writeRecords(10, 1 * MiB);
    const r = await backup();
    expect(r.results[0].snapshot).toMatch(/^[0-9a-f]{64}$/);
    const snaps = await snapshots();
    expect(snaps.length).toBeGreaterThan(atKill);
    expect(snaps.find((x) => x.hash === r.results[0].snapshot)?.offsite).toBe('local');
    await new Promise((res) => setTimeout(res, 3000));
    await fleet.nats.restart();
    const local = await expectExactlyOnce();
    console.log(`(a) ${before} off-site messages at the kill; ${local.size} objects exactly once after the restart`);
  }, 600_000);

  it('(b) the agent killed mid-replication and restarted: the outbox survives, nothing doubled', async () => {
    onTestFailed(() => console.log(fleet.output()));
    await newBackupReplicating();
    await fleet.agentDaemon!.stop('SIGKILL');
    // The outbox is what has no receipt: still there after the kill.
    const local = await localObjects();
    const book = ReceiptBook.read(stateDir);
    const repo = Object.keys(await subjectsIn('MV_OFFSITE', 'mv.v1.off.>'))[0]!.split('.')[4]!;
    const outbox = [...local].filter((o) => !book.has(repo, o.split('.')[0] as ObjectKind, o.split('.')[1]!));
    expect(outbox.length).toBeGreaterThan(0);
    fleet.startAgent();
    await expectExactlyOnce();
    console.log(`(b) ${outbox.length} objects in the outbox at the kill; all receipted once after the restart`);
  }, 600_000);

  it('(c) nats-server paused with SIGSTOP past the ack timeout, then SIGCONT: the stall times out and retries', async () => {
    onTestFailed(() => console.log(fleet.output()));
    await newBackupReplicating();
    const out = fleet.agentDaemon!.output.length;
    fleet.nats.pause();
    // The agent's ack timeout is 10 s: the stalled round fails (and is retried), it does not hang.
    await until('the stalled round failing', () => (/replication round failed/.test(fleet.agentDaemon!.output.slice(out)) ? true : undefined), 60_000, 250);
    expect(fleet.agentDaemon!.running).toBe(true);
    fleet.nats.resume();
    await expectExactlyOnce();
  }, 600_000);
});
