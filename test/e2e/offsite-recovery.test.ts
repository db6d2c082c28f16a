/**
 * Recovery from the off-site copy with a real fleet (TLS nats-server, controller, agent daemon as
 * processes): restore orders with source offsite and auto (local disk gone), self-healing of local
 * packs with check --read-data --repair, healing of a damaged off-site copy (scrub, resend by the
 * agent, alert resolved) together with a local one, the off-site prune's dry run, and replacing a
 * lost appliance from the off-site copy with the organisation's recovery key. Every restore is compared byte for byte with the records.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, headers as natsHeaders, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { OBJECT_HEADER, decode, encodePartHeader, objectParts, partCount, sha256Hex, streams, subjects, type Alert, type ObjectKind, type OrderStatus } from '@medvault/protocol';
import { DirStore } from '../../agent/src/store/dir-store.js';
import { decodeConfig } from '../../agent/src/repo/config-file.js';
import { Fleet, must } from '../support/fleet.js';
import { BIN, run, until } from '../support/procs.js';
import { diffFingerprints, fingerprint, generateRecords, sampleRecords } from '../support/records.js';
import { useFleet } from '../support/use-fleet.js';

let fleet: Fleet;
let nc: NatsConnection;
let records: string;
let disk: string;
let repoId: string;
const statuses = new Map<string, OrderStatus[]>();
const alerts: Alert[] = [];

/** Every object of the local repository on `dir`, as (kind, hash, size). */
async function localObjects(dir: string): Promise<{ kind: ObjectKind; hash: string; size: number }[]> {
  const store = new DirStore(dir);
  const out: { kind: ObjectKind; hash: string; size: number }[] = [];
  const config = (await store.get('config', 'config'))!;
  out.push({ kind: 'config', hash: sha256Hex(config), size: config.length });
  for (const kind of ['key', 'pack', 'index', 'snapshot'] as const) for await (const e of store.list(kind)) out.push({ kind, hash: e.name, size: e.size });
  return out;
}

/** Waits until every object of the local repository is complete in MV_OFFSITE. */
async function replicated(): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await until('every local object off site', async () => {
    const info = await jsm.streams.info(streams.offsite.name, { subjects_filter: subjects.offsitePattern(fleet.site) });
    const counts = info.state.subjects ?? {};
    const objects = await localObjects(disk);
    return objects.every((o) => (counts[subjects.offsite(fleet.site, repoId, o.kind, o.hash)] ?? 0) >= partCount(o.size)) ? true : undefined;
  }, 120_000, 1000);
}

/** Raises a restore order as the technician and returns its final status as the agent reported it. */
async function order(source: string, target: string): Promise<OrderStatus> {
  await fleet.login();
  const r = await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', 'latest', '--path', '', '--target', target, '--source', source]);
  const id = r.json?.id as string;
  expect(id, `${r.stdout}\n${r.stderr}`).toBeTruthy();
  return until(`final status of order ${id}`, () => statuses.get(id)?.find((s) => ['refused', 'done', 'failed'].includes(s.state)), 120_000);
}

function expectSameRecords(dir: string): void {
  expect(diffFingerprints(fingerprint(records), fingerprint(dir))).toEqual([]);
}

const ws = useFleet('offsite', async (ws, start) => {
  records = sampleRecords() ?? join(ws, 'clinic', 'records');
  if (!existsSync(records)) {
    mkdirSync(records, { recursive: true });
    generateRecords(records);
  }
  mkdirSync(join(ws, 'restore'), { recursive: true });
  fleet = await start({ site: 'clinic-offsite', store: records });
  disk = join(ws, 'disk1', 'medvault');
  repoId = decodeConfig(readFileSync(join(disk, 'config'))).id;
  must(await fleet.agent('backup', 'records', '--full'), 'backup');
  fleet.startAgent();
  await fleet.agentDaemon!.waitFor(/agent running/);
  nc = await connect(fleet.natsOptions());
  const consumer = await jetstream(nc).consumers.get(streams.events.name, { filter_subjects: subjects.event(fleet.site, 'status') });
  void (async () => {
    for await (const m of await consumer.consume()) {
      const s = decode(m.data, 'mv.order-status.v1');
      statuses.set(s.orderId, [...(statuses.get(s.orderId) ?? []), s]);
    }
  })();
  const alertConsumer = await jetstream(nc).consumers.get(streams.events.name, { filter_subjects: subjects.event(fleet.site, 'alert') });
  void (async () => {
    for await (const m of await alertConsumer.consume()) alerts.push(decode(m.data, 'mv.alert.v1'));
  })();
  await replicated();
}, 300_000);

afterAll(() => nc?.close());

describe('restore from off site', () => {
  it('an order with source offsite restores the records byte for byte from the controller\'s copy', async () => {
    const target = join(ws, 'restore', 'offsite');
    const t0 = Date.now();
    const s = await order('offsite', target);
    expect(s.state, JSON.stringify(s.reason)).toBe('done');
    expect(s.result?.source).toBe('offsite');
    expect(s.result?.failed).toEqual([]);
    expectSameRecords(target);
    console.log(`off-site restore: ${s.result!.files} files, ${(s.result!.bytes / 1e6).toFixed(1)} MB in ${Date.now() - t0} ms (order to done)`);
  }, 180_000);

  it('an order with source auto uses the local disk while it is whole', async () => {
    const target = join(ws, 'restore', 'auto-local');
    const s = await order('auto', target);
    expect(s.state, JSON.stringify(s.reason)).toBe('done');
    expect(s.result?.source).toBe('local');
    expectSameRecords(target);
  }, 180_000);

  it('an order with source auto falls back to off site when the local disk is gone, and says so', async () => {
    const away = join(ws, 'disk1', 'unplugged');
    renameSync(disk, away);
    try {
      const target = join(ws, 'restore', 'auto-gone');
      const s = await order('auto', target);
      expect(s.state, JSON.stringify(s.reason)).toBe('done');
      expect(s.result?.source).toBe('offsite');
      expectSameRecords(target);
      expect(fleet.agentDaemon!.output).toMatch(/restoring from the off-site copy/);
    } finally {
      renameSync(away, disk);
    }
  }, 180_000);

  it('medvault-agent restore --from offsite restores from the off-site copy on the appliance', async () => {
    const target = join(ws, 'restore', 'cli-offsite');
    const r = must(await fleet.agent('restore', 'latest', '--target', target, '--from', 'offsite'), 'restore --from offsite');
    expect(r.source).toBe('offsite');
    expect(r.failed).toEqual([]);
    expectSameRecords(target);
    const bad = await fleet.agent('restore', 'latest', '--target', join(ws, 'restore', 'x'), '--from', 'tape');
    expect(bad.code).toBe(2);
    expect(bad.json?.message).toMatch(/--from tape: expected local, offsite or auto/);
    expect((await fleet.agent('check', '--repair')).code).toBe(2);
    expect((await fleet.agent('rebuild')).json?.message).toMatch(/rebuild needs --recovery-key FILE/);
  }, 180_000);
});

describe('self-healing local packs', () => {
  it('check --read-data --repair heals a corrupted and a deleted pack from off site, names them in an alert, and the disk checks clean after', async () => {
    const packs = readdirSync(join(disk, 'data')).flatMap((d) => readdirSync(join(disk, 'data', d)).map((h) => join(disk, 'data', d, h))).sort();
    expect(packs.length).toBeGreaterThanOrEqual(2);
    const [flipped, deleted] = [packs[0]!, packs[1]!];
    const b = readFileSync(flipped);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0x01;
    writeFileSync(flipped, b);
    rmSync(deleted);
    const before = await fleet.agent('check', '--read-data');
    expect(before.code).toBe(5);
    const t0 = Date.now();
    const r = await fleet.agent('check', '--read-data', '--repair');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const healing = r.json.results[0].healing as { kind: string; name: string; healed: boolean }[];
    expect(healing.map((h) => `${h.kind} ${h.name} ${h.healed}`).sort()).toEqual([`pack ${flipped.split('/').pop()} true`, `pack ${deleted.split('/').pop()} true`].sort());
    console.log(`repair of 2 packs (with a full read check before and after): ${Date.now() - t0} ms`);
    expect(readFileSync(flipped).equals(b)).toBe(false);
    expect(existsSync(deleted)).toBe(true);
    const after = must(await fleet.agent('check', '--read-data'), 'check after repair');
    expect(after.results[0].ok).toBe(true);
    const target = join(ws, 'restore', 'healed');
    must(await fleet.agent('restore', 'latest', '--target', target), 'local restore after repair');
    expectSameRecords(target);
    const alert = await until('the repair alert', () => alerts.find((a) => a.key === `repair:${disk}`), 60_000);
    expect(alert.message).toContain(flipped.split('/').pop()!);
    expect(alert.message).toContain(deleted.split('/').pop()!);
  }, 300_000);

  it('an off-site copy damaged (as the controller) and a local pack flipped at once: the scrub finds the first, the agent resends it, the copy verifies and its alert resolves; repair heals the second from off site; both reported', async () => {
    await replicated();
    const packs = readdirSync(join(disk, 'data')).flatMap((d) => readdirSync(join(disk, 'data', d)).map((h) => join(disk, 'data', d, h))).sort();
    const [remote, local] = [packs[0]!, packs[1]!];
    const remoteHash = remote.split('/').pop()!;
    const localName = local.split('/').pop()!;
    // As the controller: the off-site copy of one pack overwritten with bytes of the right length.
    const subject = subjects.offsite(fleet.site, repoId, 'pack', remoteHash);
    await (await jetstreamManager(nc)).streams.purge(streams.offsite.name, { filter: subject });
    for (const h of objectParts({ site: fleet.site, repo: repoId, kind: 'pack', hash: remoteHash, size: statSync(remote).size })) {
      const hd = natsHeaders();
      hd.set(OBJECT_HEADER, encodePartHeader(h));
      await jetstream(nc).publish(subject, randomBytes(h.part === h.parts - 1 ? h.size - h.part * h.partSize : h.partSize), { headers: hd });
    }
    // On the appliance: one byte of another pack flipped.
    const b = readFileSync(local);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0x01;
    writeFileSync(local, b);

    const ctl = ['--config', join(ws, 'controller.toml')];
    const t0 = Date.now();
    const scrub = await run(BIN.controller, ['offsite', 'verify', '--json', ...ctl]);
    expect(scrub.code, scrub.stderr).toBe(7);
    expect(scrub.json.damaged.map((d: { kind: string; hash: string }) => `${d.kind} ${d.hash}`)).toEqual([`pack ${remoteHash}`]);
    expect(scrub.stderr).toContain(`repository ${repoId} pack ${remoteHash}: SHA-256`);
    // The controller's alert names the object and resolves once the agent's resend is stored and receipted.
    await fleet.login();
    const { token } = JSON.parse(readFileSync(fleet.session.MEDVAULT_SESSION!, 'utf8')) as { token: string };
    const offsiteAlert = () => fetch(`${fleet.url}/api/v1/alerts?state=all&site=${fleet.site}`, { headers: { authorization: `Bearer ${token}` } })
      .then((r) => r.json() as Promise<{ alerts: Array<{ code: string; key: string; state: string; message: string }> }>)
      .then((r) => r.alerts.find((a) => a.code === 'MV_ALERT_OFFSITE_DAMAGED' && a.key === `offsite:${repoId}/pack/${remoteHash}`));
    const resolved = await until('the off-site damage alert resolved', async () => ((await offsiteAlert())?.state === 'resolved' ? offsiteAlert() : undefined), 120_000, 1000);
    expect(resolved!.message).toContain(remoteHash);
    console.log(`off-site copy healed (scrub, resend, receipt, alert resolved) in ${Date.now() - t0} ms`);
    const agentAlerts = alerts.filter((a) => a.code === 'MV_ALERT_OFFSITE_RESEND' && a.message.includes(remoteHash));
    expect(agentAlerts.map((a) => a.state)).toContain('open');
    await until('the agent says the resend is receipted', () => alerts.find((a) => a.key === agentAlerts[0]!.key && a.state === 'resolved'), 60_000);
    expect(must(await run(BIN.controller, ['offsite', 'verify', '--json', ...ctl]), 'scrub after the resend').damaged).toEqual([]);

    // The local pack is healed from the (whole again) off-site copy.
    const r = await fleet.agent('check', '--read-data', '--repair');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((r.json.results[0].healing as { kind: string; name: string; healed: boolean }[]).map((h) => `${h.kind} ${h.name} ${h.healed}`)).toEqual([`pack ${localName} true`]);
    expect(must(await fleet.agent('check', '--read-data'), 'check after repair').results[0].ok).toBe(true);
    await until('the repair alert naming the local pack', () => alerts.find((a) => a.key === `repair:${disk}` && a.message.includes(localName)), 60_000);
  }, 300_000);

  it('offsite prune --dry-run over the real needs lists: every snapshot complete and kept (no retention rule configured), nothing deleted', async () => {
    const dry = must(await run(BIN.controller, ['offsite', 'prune', '--dry-run', '--site', fleet.site, '--json', '--config', join(ws, 'controller.toml')]), 'offsite prune --dry-run');
    const snaps = dry.plans[0].snapshots as { keep: boolean; reasons: string[] }[];
    expect(snaps.length).toBeGreaterThan(0);
    expect(snaps.every((s) => s.keep && s.reasons.includes('no retention rule: everything is kept'))).toBe(true);
    expect([dry.dryRun, dry.deleted, dry.plans[0].delete.length]).toEqual([true, 0, 0]);
  }, 120_000);
});

describe('replacing a lost appliance', () => {
  it('a fresh appliance enrolled anew for the same site rebuilds the repository from off site with the recovery key, restores byte for byte, and backs up incrementally; the old nkey is refused', async () => {
    const appliance = join(ws, 'appliance');
    const oldConfig = readFileSync(fleet.config, 'utf8');
    const oldSeed = join(ws, 'enrolment', fleet.site, 'site.nk');
    await replicated();
    await fleet.agentDaemon!.stop();
    // NATS down (it is restarted below with the new enrolment): the commands that read the off-site
    // copy fail with a clear error naming the servers, exit 1, and restore nothing.
    await fleet.nats.stop();
    const down = await fleet.agent('restore', 'latest', '--target', join(ws, 'restore', 'down'), '--from', 'offsite');
    expect([down.code, down.json?.code]).toEqual([1, 'MV_ERR_TRANSPORT_FAILED']);
    expect(down.json?.message).toContain(`cannot connect to NATS at ${fleet.natsUrl}`);
    expect(existsSync(join(ws, 'restore', 'down'))).toBe(false);
    // check --repair still checks the disk, and says the repair could not reach the off-site copy
    const rep = await fleet.agent('check', '--read-data', '--repair');
    expect([rep.code, rep.json?.repairError?.code, rep.json?.results?.[0]?.ok]).toEqual([0, 'MV_ERR_TRANSPORT_FAILED', true]);
    const drill = await fleet.agent('drill', '--source', 'offsite');
    expect(drill.code).toBe(1);
    expect(drill.json?.drills?.[0]?.runs?.[0]).toMatchObject({ source: 'offsite', result: 'failed', error: { code: 'MV_ERR_TRANSPORT_FAILED' } });
    // The appliance is lost: repository, LevelDB caches, keys, configuration, state: all gone.
    rmSync(join(ws, 'disk1'), { recursive: true, force: true });
    rmSync(appliance, { recursive: true, force: true });

    // Central IT enrols the replacement: a new nkey for the same site; the old one is revoked.
    const ctl = ['--config', join(ws, 'controller.toml')];
    const bundle = join(ws, 'enrolment', `${fleet.site}-replacement`);
    must(await run(BIN.controller, ['site', 'add', fleet.site, '--rotate', '--out', bundle, '--json', ...ctl]), 'site add --rotate');
    must(await run(BIN.controller, ['nats-config', '--out', join(ws, 'nats-server.conf'), ...ctl]), 'nats-config');
    await fleet.nats.restart();
    const seed = (f: string) => new TextEncoder().encode(readFileSync(f, 'utf8').trim());
    const asSite = (f: string) => connect({ servers: fleet.natsUrl, tls: { caFile: join(ws, 'tls', 'ca.pem') }, authenticator: nkeyAuthenticator(seed(f)), inboxPrefix: `_INBOX.${fleet.site}`, maxReconnectAttempts: 0, timeout: 5000 });
    await expect(asSite(oldSeed)).rejects.toThrow(/authoriz/i);
    await (await asSite(join(bundle, 'site.nk'))).close();
    await nc.close();
    nc = await connect(fleet.natsOptions());

    // The technician installs the bundle on the new appliance (same config, the new nkey).
    mkdirSync(appliance, { recursive: true });
    writeFileSync(fleet.config, oldConfig.replace(JSON.stringify(oldSeed), JSON.stringify(join(bundle, 'site.nk'))));
    // A wrong recovery key is refused before the local key or a folder exists; a disk folder that is
    // not empty and not a repository is refused, and left as it was.
    must(await fleet.agent('recovery-key', 'generate', '--out', join(ws, 'wrong.key')), 'a wrong recovery key');
    const wrongKey = await fleet.agent('rebuild', '--recovery-key', join(ws, 'wrong.key'));
    expect([wrongKey.code, wrongKey.json?.code]).toEqual([1, 'MV_ERR_KEY_INVALID']);
    expect([existsSync(join(appliance, 'local.key')), existsSync(disk)]).toEqual([false, false]);
    mkdirSync(disk, { recursive: true });
    writeFileSync(join(disk, 'notes.txt'), 'not a repository');
    const foreign = await fleet.agent('rebuild', '--recovery-key', join(ws, 'it-offline', 'recovery.key'));
    expect([foreign.code, foreign.json?.code]).toEqual([1, 'MV_ERR_CONFLICT']);
    expect(foreign.json?.message).toContain(`${disk} is not empty and is not a repository (holds notes.txt)`);
    expect([readdirSync(disk), existsSync(join(appliance, 'local.key'))]).toEqual([['notes.txt'], false]);
    rmSync(disk, { recursive: true });
    const t0 = Date.now();
    const rebuilt = await fleet.agent('rebuild', '--recovery-key', join(ws, 'it-offline', 'recovery.key'));
    expect(rebuilt.code, rebuilt.stdout + rebuilt.stderr).toBe(0);
    const ms = Date.now() - t0;
    expect(rebuilt.json.repo).toBe(repoId);
    expect(rebuilt.json.failed).toEqual([]);
    console.log(`rebuild: ${rebuilt.json.copied} objects, ${(rebuilt.json.bytes / 1e6).toFixed(1)} MB in ${ms} ms (command), ${rebuilt.json.ms} ms copying`);
    expect(existsSync(join(appliance, 'local.key'))).toBe(true);
    expect(JSON.parse(readFileSync(join(appliance, 'state', 'disks.json'), 'utf8'))).toEqual({ [disk]: repoId });
    // A rebuild again is a no-op that copies nothing (resumable).
    const again = must(await fleet.agent('rebuild', '--recovery-key', join(ws, 'it-offline', 'recovery.key')), 'rebuild again');
    expect([again.copied, again.present, again.keyFile]).toEqual([0, rebuilt.json.copied, rebuilt.json.keyFile]);

    const target = join(ws, 'restore', 'rebuilt');
    const restored = must(await fleet.agent('restore', 'latest', '--target', target), 'restore after rebuild');
    expect(restored.failed).toEqual([]);
    expectSameRecords(target);
    expect(must(await fleet.agent('check', '--read-data'), 'check after rebuild').results[0].ok).toBe(true);

    // The agent works as usual: an incremental backup stores (almost) nothing new, and replicates over the new nkey.
    const inc = must(await fleet.agent('backup', 'records'), 'incremental backup after rebuild');
    expect(inc.results[0].summary.newBytes).toBe(0);
    fleet.startAgent();
    await fleet.agentDaemon!.waitFor(/agent running/);
    await replicated();
  }, 600_000);
});
