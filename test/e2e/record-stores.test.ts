/**
 * Record stores with a running agent daemon over a real nats-server: continuous protection within
 * the RPO target, event bursts and files still being written, the store folder vanishing (seen in
 * `medvault-agent status` and alerted), and a simulated ransomware run over a copy of the sample
 * records: the alert reaches the controller's stream within one run, naming the last snapshot
 * before the attack, which restores byte for byte.
 */
import { cpSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { decode, streams, subjects, type Alert } from '@medvault/protocol';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { withInotifyLimit } from '../../agent/src/watch/testing.js';
import { diffFingerprints, fingerprint, generateRecords, sampleRecords } from '../support/records.js';
import { useFleet } from '../support/use-fleet.js';

async function followAlerts(nc: NatsConnection, site: string, into: Alert[]): Promise<void> {
  const consumer = await jetstream(nc).consumers.get(streams.events.name, { filter_subjects: subjects.event(site, 'alert') });
  void (async () => {
    for await (const m of await consumer.consume()) into.push(decode(m.data, 'mv.alert.v1'));
  })();
}

describe('continuous protection', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  const alerts: Alert[] = [];
  let store: string;

  useFleet('cont', async (ws, start) => {
    store = join(ws, 'clinic', 'records');
    mkdirSync(join(store, 'fhir'), { recursive: true });
    writeFileSync(join(store, 'fhir', 'first.json'), '{"resourceType":"Patient"}');
    fleet = await start({ site: 'clinic-cont', store, storeLines: ['continuous = true', 'rpo_s = 10', 'rescan_s = 600'] });
    must(await fleet.agent('backup', 'records', '--full'), 'backup');
    fleet.startAgent();
    nc = await connect(fleet.natsOptions());
    await followAlerts(nc, fleet.site, alerts);
    await until('the daemon status', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'watching' ? true : undefined), 30_000);
  }, 60_000);

  afterAll(() => nc?.close());

  const latestHas = async (path: string, size?: number) => {
    const r = await fleet.agent('ls', 'latest', '--store', 'records');
    const row = (r.json?.entries ?? r.json?.files ?? []).find((e: any) => (e.path ?? e.display ?? e.name) === path);
    return row && (size === undefined || row.size === size) ? row : undefined;
  };

  it('a record written into the store is in a committed local snapshot within the RPO target (10 s)', async () => {
    const t0 = Date.now();
    writeFileSync(join(store, 'fhir', 'new-patient.json'), '{"resourceType":"Patient","id":"new"}');
    await until('the new record in the latest snapshot', () => latestHas('fhir/new-patient.json'), 10_000, 200);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  it('a burst of 2,000 files and a file still being written are all captured, none torn', async () => {
    mkdirSync(join(store, 'burst'));
    for (let i = 0; i < 2000; i++) writeFileSync(join(store, 'burst', `obs-${i}.json`), `{"i":${i}}`);
    const growing = join(store, 'growing.hl7');
    for (let i = 0; i < 15; i++) {
      appendFileSync(growing, `MSH|^~\\&|LAB|${i}|${'x'.repeat(1000)}\r`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const size = statSync(growing).size;
    await until('the finished file in the latest snapshot', () => latestHas('growing.hl7', size), 15_000, 300);
    await until('every burst file', async () => ((await latestHas('burst/obs-1999.json')) && (await latestHas('burst/obs-0.json')) ? true : undefined), 15_000, 300);
    const ls = await fleet.agent('ls', 'latest', 'burst', '--store', 'records');
    expect((ls.json?.entries ?? ls.json?.files ?? []).length).toBeGreaterThanOrEqual(2000);
  }, 60_000);

  it.skipIf(process.getuid?.() !== 0)('the inotify watch limit degrades the watcher to scanning, shown in status and alerted; records are still captured', async () => {
    await withInotifyLimit(1, async () => {
      mkdirSync(join(store, 'new-folder', 'deeper'), { recursive: true });
      writeFileSync(join(store, 'new-folder', 'deeper', 'scan.dcm'), 'DICM');
      await until('scanning in status', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'scanning' ? true : undefined), 15_000);
    });
    await until('the watcher alert on the controller stream', () => alerts.find((a) => a.code === 'MV_ALERT_WATCHER_DEGRADED' && a.state === 'open'), 15_000);
    expect((await fleet.agent('status')).stdout).toMatch(/scanning|inotify/);
    // The error itself asks for a rescan, so the new record is still backed up.
    await until('the record in the latest snapshot', () => latestHas('new-folder/deeper/scan.dcm'), 15_000, 300);
  }, 60_000);

  it('the store folder vanishing is shown in status and alerted, and watching resumes when it returns', async () => {
    const aside = `${store}.aside`;
    renameSync(store, aside);
    await until('root-missing in status', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'root-missing' ? true : undefined), 15_000);
    await until('the store-missing alert on the controller stream', () => alerts.find((a) => a.code === 'MV_ALERT_STORE_MISSING' && a.state === 'open'), 15_000);
    const status = await fleet.agent('status');
    expect(status.stdout).toMatch(/root-missing|MV_ALERT_STORE_MISSING|missing/);
    renameSync(aside, store);
    await until('watching again', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'watching' ? true : undefined), 15_000);
    await until('the alert resolved', () => alerts.find((a) => a.code === 'MV_ALERT_STORE_MISSING' && a.state === 'resolved'), 15_000);
    // Nothing was recorded as deleted while the folder was gone.
    expect(await latestHas('fhir/first.json')).toBeDefined();
  }, 60_000);
});

describe('ransomware', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  const alerts: Alert[] = [];

  const ws = useFleet('ransom', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(store, { recursive: true });
    const samples = sampleRecords();
    if (samples) cpSync(samples, store, { recursive: true });
    else generateRecords(store);
    fleet = await start({ site: 'clinic-ransom', store, storeLines: ['continuous = true', 'rpo_s = 10'] });
    nc = await connect(fleet.natsOptions());
    await followAlerts(nc, fleet.site, alerts);
  }, 60_000);

  afterAll(() => nc?.close());

  it('every file rewritten with random bytes and a new extension: alert within one run, the pre-attack snapshot restores byte for byte', async () => {
    const store = join(ws, 'clinic', 'records');
    const before = fingerprint(store);
    const good = must(await fleet.agent('backup', 'records', '--full'), 'backup').results[0].snapshot as string;
    fleet.startAgent();
    await until('the daemon status', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'watching' ? true : undefined), 30_000);
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    for (const f of walk(store)) {
      writeFileSync(f, randomBytes(Math.max(1024, Math.min(statSync(f).size, 256 * 1024))));
      renameSync(f, `${f}.locked`);
    }
    const alert = await until('the ransomware alert on the controller stream', () => alerts.find((a) => a.code === 'MV_ALERT_RANSOMWARE'), 30_000);
    expect(alert.severity).toBe('critical');
    expect(alert.message).toContain(good);
    const suspect = await fleet.agent('suspect', 'list');
    expect(suspect.json.suspect[0]).toMatchObject({ store: 'records', lastGood: good });
    const target = join(ws, 'restore', 'pre-attack');
    must(await fleet.agent('restore', good, '--target', target), 'restore of the pre-attack snapshot');
    expect(diffFingerprints(before, fingerprint(target))).toEqual([]);
  }, 90_000);
});
