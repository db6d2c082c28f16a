/**
 * The clinic's bandwidth limit, through real processes: nats-server (TLS, nkeys), controller and
 * agent daemon with `[replication] bandwidth` at 8 Mbit/s. The replication rate measured at the
 * server over more than 60 s stays within 10 % of the limit, every object still gets its receipt,
 * heartbeats keep coming during the long throttled drain and carry the catch-up estimate, and a
 * local backup of the same data is not slowed while the throttled replication runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

const LIMIT = 1_000_000; // 8 Mbit/s in bytes per second
const DATA = 64 * 1024 * 1024; // incompressible: about 67 s at the limit

describe('replication bandwidth limit (8 Mbit/s)', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  const ws = useFleet('bandwidth', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(store, { recursive: true });
    for (let i = 0; i < 16; i++) writeFileSync(join(store, `scan-${i}.dcm`), randomBytes(DATA / 16));
    fleet = await start({
      site: 'clinic-bw', store,
      agentLines: ['[replication]', 'timezone = "UTC"', 'bandwidth = [{ days = "*", from = "00:00", to = "24:00", limit = "8Mbit" }]'],
    });
    nc = await connect(fleet.natsOptions());
  }, 120_000);
  afterAll(() => nc?.close());

  /** Seconds a full reread backup of the store takes (the best of two: the machine is shared). */
  const timeFullBackup = async () => {
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = Date.now();
      must(await fleet.agent('backup', 'records', '--full'), 'medvault-agent backup --full');
      times.push((Date.now() - t) / 1000);
    }
    return Math.min(...times);
  };

  it('keeps the replication rate within 10 % of the limit for over 60 s; local backups are not slowed', async () => {
    must(await fleet.agent('backup', 'records'), 'medvault-agent backup');
    const alone = await timeFullBackup();

    const parts: { t: number; bytes: number }[] = [];
    const heartbeats: { t: number; backlog: Record<string, number> }[] = [];
    const inbox = nc.subscribe(`mv.v1.in.${fleet.site}.>`, { callback: (_e, m) => void parts.push({ t: Date.now(), bytes: m.data.byteLength }) });
    const hbs = nc.subscribe(`mv.v1.ev.${fleet.site}.heartbeat`, { callback: (_e, m) => void heartbeats.push({ t: Date.now(), backlog: JSON.parse(new TextDecoder().decode(m.data)).backlog }) });
    fleet.startAgent();
    await until('the first object part', () => (parts.length > 0 ? true : undefined), 60_000);
    await new Promise((r) => setTimeout(r, 5000));
    const during = await timeFullBackup();

    const list = await until('every snapshot receipted off site', async () => {
      const r = must(await fleet.agent('snapshots'), 'medvault-agent snapshots');
      return r.snapshots.length >= 5 && r.snapshots.every((s: { offsite: string }) => s.offsite === 'both') ? r.snapshots : undefined;
    }, 180_000, 2000).catch((err: Error) => {
      throw new Error(`${err.message}; parts seen ${parts.length}\n${fleet.output()}`);
    });
    inbox.unsubscribe();
    hbs.unsubscribe();

    const span = (parts.at(-1)!.t - parts[0]!.t) / 1000;
    const bytes = parts.slice(1).reduce((n, p) => n + p.bytes, 0);
    const rate = bytes / span;
    console.log(`bandwidth: ${(bytes / 1e6).toFixed(1)} MB in ${span.toFixed(1)} s = ${(rate / 1e6).toFixed(3)} MB/s (limit 1.000); full backup alone ${alone.toFixed(2)} s, during throttled replication ${during.toFixed(2)} s; ${list.length} snapshots receipted`);
    expect(span).toBeGreaterThanOrEqual(60);
    expect(rate).toBeGreaterThan(LIMIT * 0.9);
    expect(rate).toBeLessThan(LIMIT * 1.1);
    // No second over the limit by more than the bucket (one second of tokens) plus one part.
    for (const p of parts) {
      const window = parts.filter((q) => q.t > p.t - 10_000 && q.t <= p.t).reduce((n, q) => n + q.bytes, 0);
      if (p.t - parts[0]!.t >= 10_000) expect(window).toBeLessThan(LIMIT * 10 + 2 * 1024 * 1024);
    }
    expect(during).toBeLessThan(alone * 1.5 + 1);

    // Heartbeats went on during the throttled drain and carried the estimate.
    const inDrain = heartbeats.filter((h) => h.t >= parts[0]!.t && h.t <= parts.at(-1)!.t);
    expect(inDrain.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < inDrain.length; i++) expect(inDrain[i]!.t - inDrain[i - 1]!.t).toBeLessThan(15_000);
    const late = inDrain.filter((h) => h.t - parts[0]!.t > 30_000 && parts.at(-1)!.t - h.t > 10_000);
    expect(late.length).toBeGreaterThan(0);
    for (const h of late) {
      expect(h.backlog.limitBps).toBe(LIMIT);
      expect(h.backlog.toSendBytes).toBeGreaterThan(0);
      expect(h.backlog.rateBps).toBeGreaterThan(LIMIT * 0.8);
      expect(h.backlog.rateBps).toBeLessThan(LIMIT * 1.2);
      expect(h.backlog.etaS).toBe(Math.ceil(h.backlog.toSendBytes! / h.backlog.rateBps!));
    }
  }, 300_000);
});
