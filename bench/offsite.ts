/**
 * Benchmark section `offsite` (issue 6): the off-site path against what the NATS server itself
 * does, all on the one secure nats-server (TLS, nkeys) the bench's fleet starts:
 *  - baseline_publish_mb_s: plain JetStream publish of 1 MiB messages, 16 in flight;
 *  - baseline_get_mb_s: plain @nats-io/obj Object Store get of one object of `mib` MiB (1 GiB);
 *  - relay_ceiling_mb_s: the same bytes along the path replication must take (inbox, controller,
 *    off-site stream, read back before the receipt) in plain nats.js: what any implementation of
 *    this design can reach here (bench/relay.ts);
 *  - readback_ceiling_mb_s: publish straight into one stream and read it back, the two passes any
 *    design needs when a receipt follows a read-back;
 *  - replicate_mb_s: agent → controller, first part published to last receipt, for the sample
 *    records and for one incompressible file of `mib` MiB (the headline), the agent unthrottled;
 *  - restore_mb_s: `medvault-agent restore --from offsite` of that file (read back from the
 *    controller's copy, decrypted, written and verified), the better of two.
 * Goals: replicate ≥ 0.8 × baseline_publish, restore ≥ 3 × baseline_get; the ratios are reported.
 */
import { cpSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { Fleet, must } from '../test/support/fleet.js';
import { until } from '../test/support/procs.js';
import { generateRecords, sampleRecords } from '../test/support/records.js';
import { runRelay } from './relay.js';

export interface OffsiteResult {
  object_mib: number;
  baseline_publish_mb_s: number;
  baseline_get_mb_s: number;
  /** The inbox → controller → off-site → read-back path alone, in plain nats.js (bench/relay.ts). */
  relay_ceiling_mb_s: number;
  /** Publish straight into the off-site stream plus the read-back: two passes, the least a receipt after a read-back allows. */
  readback_ceiling_mb_s: number;
  replicate_records_mb_s: number;
  records_mb: number;
  replicate_large_mb_s: number;
  /** The agent's side alone for the large file: its first part to its last part published. */
  agent_send_large_mb_s: number;
  /** The headline: the large file's rate. */
  replicate_mb_s: number;
  /** The better of two restores. */
  restore_mb_s?: number;
  ratios: { replicate_vs_publish: number; replicate_vs_ceiling: number; ceiling_vs_publish: number; readback_ceiling_vs_publish: number; restore_vs_get?: number };
  goals: { replicate_vs_publish: 0.8; restore_vs_get: 3 };
  loadavg: number[];
}

const MiB = 1024 * 1024;
const mbs = (bytes: number, ms: number) => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;

/** `count` messages of 1 MiB published with 16 in flight; MB/s. */
async function basePublish(nc: NatsConnection, count: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'BENCH_PUBLISH', subjects: ['bench.publish'], storage: StorageType.File });
  try {
    const js = jetstream(nc);
    const payload = randomBytes(MiB);
    const inFlight: Promise<unknown>[] = [];
    const t = Date.now();
    for (let i = 0; i < count; i++) {
      inFlight.push(js.publish('bench.publish', payload));
      if (inFlight.length >= 16) await inFlight.shift();
    }
    await Promise.all(inFlight);
    return mbs(count * MiB, Date.now() - t);
  } finally {
    await jsm.streams.delete('BENCH_PUBLISH');
  }
}

/** One object of `mib` MiB put into a plain Object Store, then timed while got back; MB/s of the get. */
async function baseGet(nc: NatsConnection, mib: number): Promise<number> {
  const objm = new Objm(nc);
  const os = await objm.create('bench', { storage: StorageType.File });
  try {
    const chunk = randomBytes(MiB);
    let left = mib;
    await os.put({ name: 'big' }, new ReadableStream<Uint8Array>({ pull: (c) => (left-- > 0 ? c.enqueue(chunk) : c.close()) }));
    const t = Date.now();
    const r = await os.get('big');
    if (!r) throw new Error('bench offsite: the object store lost its object');
    let bytes = 0;
    for await (const b of r.data) bytes += b.byteLength;
    if ((await r.error) || bytes !== mib * MiB) throw new Error(`bench offsite: object store get returned ${bytes} bytes (${(await r.error)?.message ?? 'no error'})`);
    return mbs(bytes, Date.now() - t);
  } finally {
    await os.destroy();
  }
}

/** Starts the agent and times from its first object part to the receipt that makes everything off site. */
async function timeReplication(fleet: Fleet, nc: NatsConnection): Promise<{ bytes: number; ms: number; sendMs: number }> {
  const ids = new Map<string, number>();
  let first = 0;
  let lastPart = 0;
  let lastReceipt = 0;
  const parts = nc.subscribe(`mv.v1.in.${fleet.site}.>`, { callback: (_e, m) => void ((first ||= Date.now()), (lastPart = Date.now()), ids.set(m.headers?.get('Nats-Msg-Id') ?? '', m.data.byteLength)) });
  const receipts = nc.subscribe(`mv.v1.ctl.${fleet.site}.receipt`, { callback: () => void (lastReceipt = Date.now()) });
  fleet.startAgent();
  await until('every snapshot receipted off site', async () => {
    const r = must(await fleet.agent('snapshots'), 'medvault-agent snapshots');
    return r.snapshots.length > 0 && r.snapshots.every((s: { offsite: string }) => s.offsite === 'both') ? true : undefined;
  }, 30 * 60_000, 500);
  parts.unsubscribe();
  receipts.unsubscribe();
  await fleet.agentDaemon!.stop();
  return { bytes: [...ids.values()].reduce((a, b) => a + b, 0), ms: lastReceipt - first, sendMs: lastPart - first };
}

export async function runOffsite(o: { mib?: number; say?: (l: string) => void } = {}): Promise<OffsiteResult> {
  const mib = Math.max(16, Math.round(o.mib ?? 1024));
  const say = o.say ?? (() => {});
  const ws = mkdtempSync(join(tmpdir(), 'mv-bench-offsite-'));
  const store = join(ws, 'clinic', 'records');
  mkdirSync(store, { recursive: true });
  const samples = sampleRecords();
  if (samples) cpSync(samples, join(store, 'samples'), { recursive: true });
  else generateRecords(join(store, 'samples'));
  const fleet = await Fleet.start({ ws, site: 'bench-offsite', store, restoreRoots: [join(ws, 'restore')] });
  const nc = await connect(fleet.natsOptions());
  try {
    const baseline_publish_mb_s = await basePublish(nc, mib);
    say(`offsite: baseline JetStream publish (1 MiB, 16 in flight): ${baseline_publish_mb_s} MB/s`);
    const baseline_get_mb_s = await baseGet(nc, mib);
    say(`offsite: baseline Object Store get (${mib} MiB): ${baseline_get_mb_s} MB/s`);
    const conn = { servers: String(fleet.natsOptions().servers), caFile: join(ws, 'tls', 'ca.pem'), seedFile: join(ws, 'controller', 'controller.nk') };
    const times = (x: number) => `${Math.round((x / baseline_publish_mb_s) * 100) / 100} × publish`;
    const relay_ceiling_mb_s = await runRelay(nc, conn, mib);
    say(`offsite: ceiling of the inbox → controller → off-site stream → read-back path in plain nats.js (3 processes): ${relay_ceiling_mb_s} MB/s (${times(relay_ceiling_mb_s)})`);
    const readback_ceiling_mb_s = await runRelay(nc, conn, mib, { direct: true });
    say(`offsite: ceiling of any design with a read-back before the receipt (publish + read back, 2 processes): ${readback_ceiling_mb_s} MB/s (${times(readback_ceiling_mb_s)})`);

    must(await fleet.agent('backup', 'records'), 'medvault-agent backup');
    const records = await timeReplication(fleet, nc);
    const replicate_records_mb_s = mbs(records.bytes, records.ms);
    say(`offsite: replicate the ${samples ? 'sample' : 'generated'} records: ${(records.bytes / 1e6).toFixed(1)} MB in ${(records.ms / 1000).toFixed(1)} s = ${replicate_records_mb_s} MB/s`);

    const fd = openSync(join(store, 'large.bin'), 'w');
    for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(MiB));
    closeSync(fd);
    const snap = must(await fleet.agent('backup', 'records'), 'medvault-agent backup (large file)');
    const large = await timeReplication(fleet, nc);
    const replicate_large_mb_s = mbs(large.bytes, large.ms);
    const agent_send_large_mb_s = mbs(large.bytes, large.sendMs);
    say(`offsite: replicate one ${mib} MiB file: ${(large.bytes / 1e6).toFixed(1)} MB in ${(large.ms / 1000).toFixed(1)} s = ${replicate_large_mb_s} MB/s (the agent published its last part after ${(large.sendMs / 1000).toFixed(1)} s: ${agent_send_large_mb_s} MB/s)`);

    // restored twice; the better of the two is reported
    const hash = snap.results[0].snapshot as string;
    const restoreOnce = async (i: number): Promise<number | undefined> => {
      const t = Date.now();
      const r = await fleet.agent('restore', hash, '--store', 'records', '--path', 'large.bin', '--target', join(ws, 'restore', `large-${i}`), '--from', 'offsite');
      rmSync(join(ws, 'restore', `large-${i}`), { recursive: true, force: true });
      if (r.code !== 0) return void say(`offsite: restore from off site not measured: exit ${r.code}: ${(r.json?.message ?? r.stderr).slice(0, 300)}`);
      const rate = mbs(mib * MiB, Date.now() - t);
      say(`offsite: restore the ${mib} MiB file from off site: ${rate} MB/s (${r.json?.verified ?? '?'} verified)`);
      return rate;
    };
    const runs = [await restoreOnce(0), await restoreOnce(1)];
    const restore_mb_s = runs.every((x) => x !== undefined) ? Math.max(...(runs as number[])) : undefined;

    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      object_mib: mib, baseline_publish_mb_s, baseline_get_mb_s, relay_ceiling_mb_s, readback_ceiling_mb_s,
      replicate_records_mb_s, records_mb: Math.round(records.bytes / 1e5) / 10, replicate_large_mb_s, agent_send_large_mb_s, replicate_mb_s: replicate_large_mb_s,
      ...(restore_mb_s !== undefined ? { restore_mb_s } : {}),
      ratios: {
        replicate_vs_publish: round(replicate_large_mb_s / baseline_publish_mb_s),
        replicate_vs_ceiling: round(replicate_large_mb_s / relay_ceiling_mb_s),
        ceiling_vs_publish: round(relay_ceiling_mb_s / baseline_publish_mb_s),
        readback_ceiling_vs_publish: round(readback_ceiling_mb_s / baseline_publish_mb_s), ...(restore_mb_s !== undefined ? { restore_vs_get: round(restore_mb_s / baseline_get_mb_s) } : {}) },
      goals: { replicate_vs_publish: 0.8, restore_vs_get: 3 },
      loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10),
    };
  } finally {
    await nc.close();
    await fleet.stop();
    rmSync(ws, { recursive: true, force: true });
  }
}
