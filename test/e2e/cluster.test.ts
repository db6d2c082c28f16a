/**
 * The controller and two clinic agents against a real three-node NATS cluster on loopback (TLS,
 * nkeys, per-site permissions, JetStream R3), as deploy/nats-cluster/ sets it up. One node — the
 * leader of the off-site stream — is killed with SIGKILL while replication runs; off-site copies
 * keep arriving on the other two, then the node comes back and catches up. Every snapshot of
 * both sites ends with every object receipted, every object is in MV_OFFSITE exactly once
 * (each part once, none doubled), and the three-copy streams keep serving. Both daemons speak
 * systemd's notify protocol to a socket the test binds (READY=1, then WATCHDOG=1).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { OBJECT_HEADER, decodePart, objectKinds, streams, subjects } from '@medvault/protocol';
import { FOLLOW_STALL_MS, openLink } from '../../agent/src/replicate/link.js';
import { Repository } from '../../agent/src/repo/repository.js';
import { DirStore } from '../../agent/src/store/dir-store.js';
import { readLocalKey } from '../../agent/src/crypto/local-key.js';
import { makeCa } from '../support/secure-nats.js';
import { NatsCluster } from '../support/nats-cluster.js';
import { NotifySocket } from '../support/notify-socket.js';
import { BIN, Daemon, run, until } from '../support/procs.js';
import { must } from '../support/fleet.js';

const SITES = ['clinic-a', 'clinic-b'] as const;
const FILES = 6;
const FILE_BYTES = 1024 * 1024;

describe('three-node NATS cluster (R3): the loss of any one node loses and doubles nothing', () => {
  const ws = mkdtempSync(join(tmpdir(), 'mv-cluster-'));
  let cluster: NatsCluster;
  let nc: NatsConnection | undefined;
  let ctlUrl = '';
  const daemons: Daemon[] = [];
  const sockets: NotifySocket[] = [];
  const agentConfig = (site: string) => join(ws, site, 'agent.toml');
  const agent = (site: string, ...args: string[]) => run(BIN.agent, ['--config', agentConfig(site), ...args, '--json']);

  beforeAll(async () => {
    const tls = makeCa(ws);
    const plan = await NatsCluster.plan(3);
    const urls = plan.map((p) => `tls://127.0.0.1:${p.clientPort}`);
    const ctlConfig = join(ws, 'controller.toml');
    writeFileSync(ctlConfig, [
      `state_dir = ${JSON.stringify(join(ws, 'controller'))}`,
      '[nats]', `servers = ${JSON.stringify(urls)}`, `nkey_file = ${JSON.stringify(join(ws, 'controller', 'controller.nk'))}`, `ca_file = ${JSON.stringify(tls.caFile)}`, 'replicas = 3',
      '[nats_server]', 'host = "127.0.0.1"', `port = ${plan[0]!.clientPort}`, `store_dir = ${JSON.stringify(join(ws, 'nats'))}`,
      `cert_file = ${JSON.stringify(tls.certFile)}`, `key_file = ${JSON.stringify(tls.keyFile)}`, '',
    ].join('\n'));
    const ctl = ['--config', ctlConfig];
    must(await run(BIN.controller, ['config', 'check', ...ctl]), 'medvault-controller config check');
    must(await run(BIN.controller, ['init', ...ctl]), 'medvault-controller init');
    for (const site of SITES) must(await run(BIN.controller, ['site', 'add', site, '--out', join(ws, 'enrolment', site), '--nats-url', urls.join(','), '--json', ...ctl]), `site add ${site}`);
    must(await run(BIN.controller, ['nats-config', '--out', join(ws, 'nats-base.conf'), ...ctl]), 'medvault-controller nats-config');
    cluster = await NatsCluster.start(join(ws, 'cluster'), join(ws, 'nats-base.conf'), plan);

    const controllerKey = must(await run(BIN.controller, ['key', ...ctl, '--json']), 'medvault-controller key').publicKey as string;
    const ctlNotify = new NotifySocket(`@mv-test-ctl-${process.pid}`);
    sockets.push(ctlNotify);
    const controller = new Daemon('controller', BIN.controller, ['serve', ...ctl, '--port', '0'], { NOTIFY_SOCKET: ctlNotify.address, WATCHDOG_USEC: '2000000' });
    daemons.push(controller);
    ctlUrl = (await controller.waitFor(/"url":"(http:\/\/[^"]+)"/))[1]!;

    const recovery = must(await run(BIN.agent, ['recovery-key', 'generate', '--out', join(ws, 'it-offline', 'recovery.key'), '--json']), 'recovery-key generate');
    for (const site of SITES) {
      const store = join(ws, site, 'records');
      mkdirSync(store, { recursive: true });
      for (let i = 0; i < FILES; i++) writeFileSync(join(store, `scan-${i}.dcm`), randomBytes(FILE_BYTES));
      writeFileSync(agentConfig(site), [
        `site = "${site}"`, 'state_dir = "state"', 'key_file = "local.key"',
        `recovery_public_key = "${recovery.publicKey}"`, `controller_public_key = "${controllerKey}"`,
        '[nats]', `servers = ${JSON.stringify(urls)}`, `nkey_file = ${JSON.stringify(join(ws, 'enrolment', site, 'site.nk'))}`, `ca_file = ${JSON.stringify(join(ws, 'enrolment', site, 'ca.pem'))}`,
        '[[disks]]', `path = ${JSON.stringify(join(ws, site, 'disk1', 'medvault'))}`,
        '[[stores]]', 'name = "records"', 'type = "files"', `path = ${JSON.stringify(store)}`, '',
      ].join('\n'));
      must(await agent(site, 'config', 'check'), `config check ${site}`);
      must(await agent(site, 'init'), `init ${site}`);
      must(await agent(site, 'backup', 'records'), `backup ${site}`);
    }
    const seed = readFileSync(join(ws, 'controller', 'controller.nk'), 'utf8').trim();
    nc = await connect({ servers: urls, tls: { caFile: tls.caFile }, authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)), maxReconnectAttempts: -1 });
  }, 120_000);

  afterAll(async () => {
    for (const d of [...daemons].reverse()) await d.stop();
    await nc?.close().catch(() => undefined);
    await cluster?.stop();
    for (const s of sockets) s.close();
    rmSync(ws, { recursive: true, force: true });
  });

  it('doctor sees every node reachable over TLS against the pinned CA', async () => {
    const r = await agent('clinic-a', 'doctor');
    const findings = (r.json?.findings ?? []) as { check: string; subject: string; status: string; message: string }[];
    const nats = findings.filter((f) => f.check === 'nats' || f.check === 'tls');
    expect(nats.map((f) => `${f.check} ${f.status}`), JSON.stringify(nats)).toEqual(['nats ok', 'tls ok', 'nats ok', 'tls ok', 'nats ok', 'tls ok']);
    expect(nats[0]!.message).toMatch(/nats-server 2\.\d+\.\d+, JetStream/);
  });

  it('replicates both sites through the death of the off-site stream leader, exactly once', async () => {
    const dump = () => {
      const tail = (label: string, out: string) => `--- ${label}\n${out.split('\n').filter((l) => !l.includes('/api/v1/health')).slice(-40).join('\n')}`;
      console.log([...daemons.map((d) => tail(d.label, d.output)), ...cluster.nodes.map((n) => tail(n.name, n.server.output))].join('\n').slice(-30000));
    };
    onTestFailed(dump);
    if (process.env.MV_TEST_DUMP) onTestFinished(dump);
    const jsm = await jetstreamManager(nc!);
    const offsite = await jsm.streams.info('MV_OFFSITE');
    expect(offsite.config.num_replicas).toBe(3);
    expect((await jsm.streams.info('MV_INBOX')).config.num_replicas).toBe(3);

    const notify: NotifySocket[] = [];
    for (const site of SITES) {
      const s = new NotifySocket(`@mv-test-${site}-${process.pid}`);
      sockets.push(s);
      notify.push(s);
      daemons.push(new Daemon(site, BIN.agent, ['--config', agentConfig(site), 'run'], { NOTIFY_SOCKET: s.address, WATCHDOG_USEC: '2000000' }));
    }

    // Kill the node that leads MV_OFFSITE as soon as the first objects are stored off site.
    const storedAtKill = await until('the first off-site objects', async () => {
      const n = (await jsm.streams.info('MV_OFFSITE')).state.messages;
      return n > 0 ? n : undefined;
    }, 60_000, 50);
    const leader = (await cluster.streamCluster('MV_OFFSITE')).leader;
    expect(leader).toMatch(/^n[123]$/);
    await cluster.node(leader!).server.stop(true);
    const killedAt = Date.now();
    console.log(`killed ${leader} (MV_OFFSITE leader) at ${new Date(killedAt).toISOString()} with ${storedAtKill} off-site messages stored`);
    // Two of three nodes keep the R3 streams writable: off-site copies keep arriving meanwhile.
    const whileDown = await until('off-site progress with a node down', async () => {
      // Right after the kill the stream elects a new leader: API requests time out meanwhile.
      const n = (await jsm.streams.info('MV_OFFSITE').catch(() => undefined))?.state.messages ?? 0;
      return n > storedAtKill ? n : undefined;
    }, 60_000, 250);
    console.log(`${whileDown} off-site messages ${Date.now() - killedAt} ms after the kill, with ${leader} down`);
    // The node comes back (a reboot) and catches up.
    await cluster.node(leader!).server.restart();
    await cluster.waitHealthy(30_000, [cluster.node(leader!)]);

    // Every snapshot of both sites ends with every object receipted. Usually within seconds; the
    // bound is the product's own recovery timers: a delivery lost with the dead leader comes again
    // after the controller's inbox ack wait (120 s), an unanswered object is looked up off site and
    // asked for again after the agent's resend wait (60 s, then 60 s more). CI once took over 120 s.
    for (const site of SITES) {
      await until(`${site}: every snapshot off site`, async () => {
        const r = await agent(site, 'snapshots');
        const snaps = (r.json?.snapshots ?? []) as { offsite: string }[];
        return snaps.length > 0 && snaps.every((s) => s.offsite === 'both') ? snaps : undefined;
      }, 240_000, 500);
    }
    const after = await cluster.streamCluster('MV_OFFSITE');
    expect(after.leader).not.toBe(leader);

    // Exactly once: per object subject, one message per part, each part once.
    const info = await jsm.streams.info('MV_OFFSITE', { subjects_filter: 'mv.v1.off.>' });
    const subjects = info.state.subjects ?? {};
    expect(storedAtKill).toBeLessThan(info.state.messages);
    for (const [subject, count] of Object.entries(subjects)) {
      const last = await jsm.streams.getMessage('MV_OFFSITE', { last_by_subj: subject });
      const part = decodePart(last!.header?.get(OBJECT_HEADER), last!.data.byteLength);
      expect(count, `${subject}: ${count} messages for ${part.parts} part(s)`).toBe(part.parts);
    }

    // The agents pet the watchdog only after READY=1; the controller too.
    for (const s of [...notify, sockets[0]!]) {
      const m = await until(`${s.address}: READY=1 then WATCHDOG=1`, () => {
        const all = s.poll();
        const ready = all.findIndex((x) => x.startsWith('READY=1'));
        return ready >= 0 && all.slice(ready + 1).some((x) => x.startsWith('WATCHDOG=1')) ? all : undefined;
      }, 10_000, 100);
      expect(m.findIndex((x) => x.startsWith('WATCHDOG=1'))).toBeGreaterThan(m.findIndex((x) => x.startsWith('READY=1')));
    }

    // Nothing lost: every object in each agent's repository is in MV_OFFSITE.
    for (const d of daemons.slice(1)) await d.stop();
    for (const site of SITES) {
      const repo = await Repository.open(new DirStore(join(ws, site, 'disk1', 'medvault')), { localKey: await readLocalKey(join(ws, site, 'local.key')) }, { label: site });
      try {
        const want: string[] = [];
        for (const kind of objectKinds) for await (const o of repo.listObjects(kind)) want.push(`mv.v1.off.${site}.${repo.id}.${kind}.${o.hash}`);
        const have = Object.keys(subjects).filter((s) => s.startsWith(`mv.v1.off.${site}.`));
        expect(have.sort()).toEqual(want.sort());
        expect(want.length).toBeGreaterThan(4);
      } finally {
        await repo.close();
      }
    }

    // Not asserted: that the restarted node rejoins MV_OFFSITE's peer set. On nats-server 2.9.10 it
    // sometimes had not after 2 minutes (seen in CI runs); the guarantees above do not depend on it.
  }, 480_000);

  it("a site's control-stream follower moves to a live node when the node holding its consumer dies", async () => {
    const site = 'clinic-a';
    const jsm = await jetstreamManager(nc!);
    const names = async () => {
      const out: string[] = [];
      for await (const c of jsm.consumers.list(streams.control.name)) out.push(c.name);
      return out;
    };
    const before = new Set(await names());
    const link = await openLink({ servers: cluster.urls(), name: 'follower test', site, nkeySeedFile: join(ws, 'enrolment', site, 'site.nk'), caFile: join(ws, 'enrolment', site, 'ca.pem') });
    const subject = subjects.control(site, 'resend');
    const got: number[] = [];
    const from = (await jsm.streams.info(streams.control.name)).state.last_seq + 1;
    const follower = link.follow(streams.control.name, subject, from, async (m) => void got.push(m.seq));
    try {
      const name = await until('the follower consumer', async () => (await names()).find((n) => !before.has(n)), 30_000, 200);
      const host = (await jsm.consumers.info(streams.control.name, name)).cluster?.leader;
      expect(host).toMatch(/^n[123]$/);
      await cluster.node(host!).server.stop(true);
      // Two of three nodes keep MV_CONTROL writable; right after the kill a publish may time out.
      const js = jetstream(nc!, { timeout: 5000 });
      const seq = await until('a control message stored with a node down', () => js.publish(subject, new TextEncoder().encode('probe')).then((a) => a.seq, () => undefined), 60_000, 500);
      // Within a few heartbeats, not the stall timer's FOLLOW_STALL_MS, nor when the node comes back.
      await until('the follower delivering it with the node still down', () => (got.includes(seq) ? true : undefined), FOLLOW_STALL_MS / 2, 200);
      await cluster.node(host!).server.restart();
      await cluster.waitHealthy(30_000, [cluster.node(host!)]);
    } finally {
      await follower.stop();
      await link.close();
    }
  }, 240_000);
});
