/**
 * Benchmark section `fleet` (issue 7): a fleet simulator of protocol-level agents (heartbeats
 * only, no real backups) against one real controller process and nats-server. `sites` simulated
 * sites heartbeat every `heartbeatS` seconds; during the measurement, twice a second one site
 * changes state (a backup fails → critical, or recovers → ok) and the delay from publishing that
 * heartbeat to the dashboard's live channel (the WebSocket the page uses) showing the new state is
 * measured. Reports p50/p95/max of that delay and the controller's CPU (share of one core over the
 * window) and memory (RSS at the end, and its peak).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOTP } from 'otpauth';
import WebSocket from 'ws';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { subjects } from '@medvault/protocol';
import { NatsServer } from '../test/support/nats-server.js';
import { BIN, Daemon, run, until } from '../test/support/procs.js';
import { simHeartbeat, type SimCondition } from '../controller/src/health/sim.test-support.js';
import { quantile } from './stats.js';

export interface FleetResult {
  sites: number;
  heartbeat_s: number;
  seconds: number;
  heartbeats: number;
  changes: number;
  measured: number;
  p50_s: number;
  p95_s: number;
  max_s: number;
  controller_cpu_pct: number;
  controller_rss_mb: number;
  controller_rss_peak_mb: number;
}

const cpuTicks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, fields 14 and 15
};
const memKb = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const PASSWORD = 'fleet bench password 1234';

export async function runFleet(o: { sites?: number; heartbeatS?: number; seconds?: number; say?: (l: string) => void } = {}): Promise<FleetResult> {
  const sites = o.sites ?? 1000;
  const heartbeatS = o.heartbeatS ?? 10;
  const seconds = o.seconds ?? 60;
  const say = o.say ?? (() => {});
  const ws = mkdtempSync(join(tmpdir(), 'mv-bench-fleet-'));
  const nats = await NatsServer.start({ storeDir: join(ws, 'nats') });
  const ctl = ['--state-dir', join(ws, 'controller'), '--nats', nats.url];
  let controller: Daemon | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const must = (r: Awaited<ReturnType<typeof run>>, what: string) => {
      if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr || r.stdout}`);
      return r.json;
    };
    must(await run(BIN.controller, ['init', ...ctl]), 'controller init');
    const user = must(await run(BIN.controller, ['user', 'add', 'it', '--role', 'viewer', '--password-stdin', '--json', ...ctl], { input: PASSWORD }), 'user add');
    controller = new Daemon('controller', BIN.controller, ['serve', ...ctl, '--port', '0']);
    const url = (await controller.waitFor(/"url":"(http:\/\/[^"]+)"/))[1]!;
    const pid = controller.child.pid!;
    const login = await fetch(`${url}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'it', password: PASSWORD, totp: new TOTP({ secret: user.totpSecret }).generate() }) });
    const { token } = (await login.json()) as { token: string };

    // The dashboard's live channel.
    const shown = new Map<string, string>();
    const pending = new Map<string, { state: string; at: number }>();
    const delays: number[] = [];
    const live = new WebSocket(`${url.replace('http', 'ws')}/api/v1/live`);
    await new Promise<void>((resolve, reject) => live.once('open', () => resolve()).once('error', reject));
    live.send(JSON.stringify({ type: 'auth', token }));
    live.on('message', (data) => {
      const now = Date.now();
      const m = JSON.parse(String(data)) as { type: string; site?: { site: string; state: string }; sites?: { site: string; state: string }[] };
      const seen = m.type === 'site' ? [m.site!] : m.type === 'fleet' ? m.sites! : [];
      for (const s of seen) {
        shown.set(s.site, s.state);
        const p = pending.get(s.site);
        if (p && p.state === s.state) {
          delays.push((now - p.at) / 1000);
          pending.delete(s.site);
        }
      }
    });

    // The simulated agents: each heartbeats every heartbeatS, spread evenly.
    const nc = await connect({ servers: nats.url, name: 'fleet simulator' });
    const js = jetstream(nc);
    const names = Array.from({ length: sites }, (_, i) => `sim-${String(i).padStart(4, '0')}`);
    const condition = new Map<string, SimCondition>(names.map((n) => [n, 'ok']));
    const next = new Map<string, number>(names.map((n, i) => [n, Date.now() + (i * heartbeatS * 1000) / sites]));
    let heartbeats = 0;
    const beat = (site: string) => {
      heartbeats++;
      next.set(site, Date.now() + heartbeatS * 1000);
      return js.publish(subjects.event(site, 'heartbeat'), JSON.stringify(simHeartbeat(site, condition.get(site)!, Date.now(), { intervalS: heartbeatS }))).catch(() => undefined);
    };
    timer = setInterval(() => {
      const now = Date.now();
      for (const [site, t] of next) if (t <= now) void beat(site);
    }, 50);

    say(`fleet: ${sites} simulated sites heartbeating every ${heartbeatS} s against one controller; warming up`);
    await until('every simulated site on the dashboard', () => (names.every((n) => shown.get(n) === 'ok') ? true : undefined), 120_000, 250);
    await new Promise((r) => setTimeout(r, heartbeatS * 1000));

    say(`fleet: measuring for ${seconds} s: two state changes a second`);
    const cpu0 = cpuTicks(pid);
    const t0 = Date.now();
    let changes = 0;
    while (Date.now() - t0 < seconds * 1000) {
      const site = names[Math.floor(Math.random() * sites)]!;
      if (!pending.has(site)) {
        const to: SimCondition = condition.get(site) === 'ok' ? 'failed-backup' : 'ok';
        condition.set(site, to);
        pending.set(site, { state: to === 'ok' ? 'ok' : 'critical', at: Date.now() });
        changes++;
        await beat(site);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const elapsed = (Date.now() - t0) / 1000;
    const cpu = ((cpuTicks(pid) - cpu0) / 100 / elapsed) * 100;
    await new Promise((r) => setTimeout(r, 3000)); // let the last changes arrive
    const result: FleetResult = {
      sites, heartbeat_s: heartbeatS, seconds: Math.round(elapsed), heartbeats, changes, measured: delays.length,
      p50_s: quantile(delays, 0.5, 3), p95_s: quantile(delays, 0.95, 3), max_s: quantile(delays, 1, 3),
      controller_cpu_pct: Math.round(cpu * 10) / 10, controller_rss_mb: Math.round(memKb(pid, 'VmRSS') / 1024), controller_rss_peak_mb: Math.round(memKb(pid, 'VmHWM') / 1024),
    };
    clearInterval(timer);
    live.close();
    await nc.drain();
    return result;
  } finally {
    clearInterval(timer);
    await controller?.stop();
    await nats.stop();
    rmSync(ws, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('fleet.ts')) {
  const arg = (name: string) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : undefined);
  const r = await runFleet({ ...(arg('--sites') ? { sites: arg('--sites')! } : {}), ...(arg('--seconds') ? { seconds: arg('--seconds')! } : {}), say: (l) => console.log(l) });
  console.log(JSON.stringify({ fleet: r }));
}
