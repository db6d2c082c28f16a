/**
 * The first full copy of a site survives a restart on the way, and the controller shows how far
 * it is: real nats-server (TLS, nkeys), controller and agent, replication limited to 16 Mbit/s.
 * Halfway through, the dashboard API says "catching up: … MB left, about … min"; the agent is then
 * killed (SIGKILL) and started again: it sends on from the durable outbox, and not one part of an
 * object that had a receipt in its book goes out again; in the end every snapshot is off site and
 * the catch-up line is gone.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { objectKinds } from '@medvault/protocol';
import { ReceiptBook } from '../../agent/src/replicate/receipts.js';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

describe('catching up: a first full copy across an agent restart', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  const ws = useFleet('catch-up', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(store, { recursive: true });
    for (let i = 0; i < 12; i++) writeFileSync(join(store, `ct-${i}.dcm`), randomBytes(4 * 1024 * 1024));
    fleet = await start({
      site: 'clinic-cu', store,
      agentLines: ['[replication]', 'bandwidth = [{ days = "*", from = "00:00", to = "24:00", limit = "16Mbit" }]'],
    });
    nc = await connect(fleet.natsOptions());
    await fleet.login();
  }, 120_000);
  afterAll(() => nc?.close());

  const api = async (path: string) => {
    const s = JSON.parse(readFileSync(fleet.session.MEDVAULT_SESSION!, 'utf8')) as { url: string; token: string };
    const r = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as any;
  };
  const siteRow = async () => (await api('/api/v1/fleet')).sites.find((x: { site: string }) => x.site === fleet.site);

  it('resumes after SIGKILL without resending anything receipted, and reports the catch-up on the way', async () => {
    must(await fleet.agent('backup', 'records'), 'medvault-agent backup');
    let receipts = 0;
    const rs = nc.subscribe(`mv.v1.ctl.${fleet.site}.receipt`, { callback: () => void receipts++ });
    const before: string[] = [];
    const after: string[] = [];
    let restarted = false;
    const parts = nc.subscribe(`mv.v1.in.${fleet.site}.>`, { callback: (_e, m) => void (restarted ? after : before).push(m.headers?.get('Nats-Msg-Id') ?? '') });

    const agent = fleet.startAgent();
    await until('config, key and three packs receipted', () => (receipts >= 5 ? true : undefined), 90_000);
    const row = await until('the fleet overview showing the catch-up', async () => ((await siteRow())?.catchUp ? await siteRow() : undefined), 30_000);
    expect(row.catchUp).toMatch(/^catching up: \d+ MB left, about \d+ min \(limited to 16 Mbit\/s\)$/);
    expect((await api(`/api/v1/sites/${fleet.site}/health`)).catchUp).toMatch(/^catching up: \d+ MB left/);
    const health = await api(`/api/v1/sites/${fleet.site}/health`);
    expect(health.backlog.limitBps).toBe(2_000_000);
    expect(health.backlog.toSendBytes).toBeGreaterThan(4 * 1024 * 1024);

    await agent.stop('SIGKILL');
    const stateDir = join(ws, 'appliance', 'state');
    const book = ReceiptBook.read(stateDir);
    const repo = before[0]!.split('.')[1]!;
    const receipted = new Set(objectKinds.flatMap((k) => book.hashes(repo, k).map((h) => `${k}.${h}`)));
    expect(book.hashes(repo, 'pack').length).toBeGreaterThanOrEqual(2);
    expect(book.hashes(repo, 'snapshot')).toEqual([]); // halfway: the snapshot goes last

    restarted = true;
    fleet.startAgent();
    await until('every snapshot receipted off site', async () => {
      const r = must(await fleet.agent('snapshots'), 'medvault-agent snapshots');
      return r.snapshots.length > 0 && r.snapshots.every((s: { offsite: string }) => s.offsite === 'both') ? true : undefined;
    }, 120_000, 1000).catch((err: Error) => {
      throw new Error(`${err.message}\n${fleet.output()}`);
    });
    rs.unsubscribe();
    parts.unsubscribe();

    // <site>.<repo>.<kind>.<hash>.<part>
    const objectOf = (id: string) => id.split('.').slice(2, 4).join('.');
    const resent = after.filter((id) => receipted.has(objectOf(id)));
    console.log(`catch-up: ${before.length} parts before the kill, ${receipted.size} objects receipted; ${after.length} parts after the restart, ${resent.length} of them for receipted objects`);
    expect(after.length).toBeGreaterThan(0);
    expect(resent).toEqual([]);
    expect(new Set(after.map(objectOf)).size).toBeLessThan(new Set([...before, ...after].map(objectOf)).size);
    await until('the catch-up line gone', async () => ((await siteRow())?.catchUp === undefined ? true : undefined), 60_000, 1000);
  }, 300_000);
});
