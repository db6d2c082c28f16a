/**
 * The daemon started while NATS is down (a clinic's WAN or controller down at boot), on a real
 * secure fleet: it is ready at once (systemd READY, watchdog pings, the status file) and makes its
 * continuous backups locally; `status` says it is running with the link down. Then nats-server is
 * started on its port and, without restarting the agent, the snapshot is replicated (receipted off
 * site), a heartbeat arrives and `status` shows the link up.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Fleet, must } from '../support/fleet.js';
import { BIN, run, until } from '../support/procs.js';
import { NotifySocket } from '../support/notify-socket.js';
import { useFleet } from '../support/use-fleet.js';

describe('the daemon started with NATS down', () => {
  let fleet: Fleet;
  let nc: NatsConnection | undefined;
  const notify = new NotifySocket(`@mv-test-offline-${process.pid}`);
  const ws = useFleet('offline-start', async (ws, start) => {
    mkdirSync(store, { recursive: true });
    writeFileSync(join(store, 'first.json'), '{"resourceType":"Patient"}');
    fleet = await start({ site: 'clinic-off', store, storeLines: ['continuous = true', 'rpo_s = 10'] });
    await fleet.nats.stop();
  }, 120_000);
  const store = join(ws, 'records');
  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    notify.close();
  });

  const status = async () => must(await fleet.agent('status'), 'medvault-agent status');
  const snapshots = async () => must(await fleet.agent('snapshots'), 'medvault-agent snapshots').snapshots as { hash: string; offsite: string }[];

  it('backs up locally at once, then replicates and sends heartbeats once NATS is up, without a restart', async () => {
    onTestFailed(() => console.log(fleet.output()));
    const agent = fleet.startAgent({ NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '2000000' });
    await agent.waitFor(/agent running/, 20_000);
    expect(agent.output).toMatch(new RegExp(`"servers":\\["${fleet.natsUrl}"\\],"error":"connection refused","msg":"NATS not reachable yet`));
    await until('READY=1', () => (notify.poll().some((m) => m.includes('READY=1')) ? true : undefined), 10_000, 100);

    // The scheduler's first full backup, then a record written now backed up by continuous protection: locally.
    const full = await until('the first full backup', async () => (await snapshots())[0], 30_000, 500);
    writeFileSync(join(store, 'new-patient.json'), '{"resourceType":"Patient","id":"new"}');
    const snap = await until('a continuous snapshot', async () => (await snapshots()).find((s) => s.hash !== full.hash), 30_000, 500);
    expect([full.offsite, snap.offsite]).toEqual(['local', 'local']);
    const down = await until('the continuous snapshot in status', async () => {
      const s = await status();
      return s.stores[0].lastSnapshot?.hash === snap.hash ? s : undefined;
    }, 10_000, 500);
    // (In --json, `running` is the job under way when there is one: the human form says whether the agent runs.)
    expect(Date.now() - down.updatedAt).toBeLessThan(10_000);
    expect(down.link).toMatchObject({ connected: false, servers: [fleet.natsUrl] });
    const human = await run(BIN.agent, ['--config', fleet.config, 'status']);
    expect(human.stdout).toMatch(/running \(pid/);
    expect(human.stdout).toMatch(/NATS link .*: DOWN for \d+ s/);
    // The watchdog is fed while offline: pings keep coming (every half of WATCHDOG_USEC).
    const pings = notify.poll().filter((m) => m.includes('WATCHDOG=1')).length;
    await new Promise((r) => setTimeout(r, 3000));
    expect(notify.poll().filter((m) => m.includes('WATCHDOG=1')).length).toBeGreaterThan(pings);
    expect(agent.running).toBe(true);

    // NATS comes up on its port: the same agent process connects, replicates and sends heartbeats.
    await fleet.nats.restart();
    nc = await connect({ ...fleet.natsOptions(), maxReconnectAttempts: -1 });
    const heartbeats: unknown[] = [];
    nc.subscribe(`mv.v1.ev.${fleet.site}.heartbeat`, { callback: (_e, m) => void heartbeats.push(m.json()) });
    await agent.waitFor(/nats connected/, 30_000);
    await until('the snapshot receipted off site', async () => ((await snapshots()).find((s) => s.hash === snap.hash)?.offsite === 'both' ? true : undefined), 120_000, 1000);
    await until('a heartbeat', () => (heartbeats.length > 0 ? true : undefined), 30_000, 250);
    await until('status: link up', async () => ((await status()).link?.connected === true ? true : undefined), 10_000, 500);
    expect(agent.running).toBe(true);
  }, 300_000);
});
