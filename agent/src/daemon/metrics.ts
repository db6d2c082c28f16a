/**
 * The daemon's Prometheus metrics (`GET /metrics` on 127.0.0.1:`MEDVAULT_METRICS_PORT`, opt-in)
 * and the heartbeat's per-store view, both read from the same AgentStatus the status file holds.
 * The only file that imports prom-client in the agent.
 */
import { createServer } from 'node:http';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Heartbeat } from '@medvault/protocol';
import type { AgentStatus } from './status.js';

type HeartbeatStore = NonNullable<Heartbeat['stores']>[number];
const results = new Set(['ok', 'partial', 'failed']);

/** The heartbeat's stores from the status and the repository's snapshots (for the last continuous run). */
export function heartbeatStores(s: AgentStatus, snaps: { store: string; job: string; time: number }[], pendingSince: (store: string) => number | undefined = () => undefined): HeartbeatStore[] {
  return s.stores.slice(0, 64).map((st) => {
    const cont = snaps.filter((x) => x.store === st.name && x.job === 'continuous').reduce((m, x) => Math.max(m, x.time), 0);
    const lj = st.lastJob;
    const pending = st.continuous ? pendingSince(st.name) : undefined;
    return {
      name: st.name.slice(0, 200), kind: st.type.slice(0, 20), continuous: st.continuous, rpoS: Math.max(0, Math.floor(st.rpoS)),
      ...(st.lastFull ? { lastFullAt: st.lastFull } : {}), ...(st.lastIncremental ? { lastIncrementalAt: st.lastIncremental } : {}),
      ...(cont ? { lastContinuousAt: cont } : {}), ...(st.lastSnapshot ? { lastSnapshotAt: st.lastSnapshot.time } : {}),
      ...(lj && results.has(lj.result) ? { lastJob: { job: lj.job.slice(0, 20), result: lj.result as 'ok', endedAt: lj.endedAt, ...(lj.error ? { error: lj.error.slice(0, 2000) } : {}) } } : {}),
      ...(st.watcher ? { watcher: { state: st.watcher.state.slice(0, 40), ...(st.watcher.reason ? { reason: st.watcher.reason.slice(0, 2000) } : {}), since: st.watcher.since } } : {}),
      ...(pending !== undefined ? { pendingSince: pending } : {}),
      ...(st.schedule ? { schedule: { full: st.schedule.full.slice(0, 100), incremental: st.schedule.incremental.slice(0, 100), ...(st.schedule.timezone ? { timezone: st.schedule.timezone.slice(0, 100) } : {}) } } : {}),
    };
  });
}

/** Serves /metrics until closed. Gauges are read from `status()` at each scrape. */
export async function startAgentMetrics(port: number, status: () => AgentStatus | undefined, host = '127.0.0.1'): Promise<{ port: number; close(): Promise<void> }> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'medvault_agent_' });
  const g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const backlogObjects = g('medvault_agent_backlog_objects', 'repository objects not yet receipted off site');
  const backlogBytes = g('medvault_agent_backlog_bytes', 'bytes not yet receipted off site');
  const lastSnapshot = g('medvault_agent_store_last_snapshot_seconds', 'unix time of the store\'s newest snapshot', ['store']);
  const lastJobOk = g('medvault_agent_store_last_job_ok', '1 when the store\'s last job succeeded', ['store']);
  const watching = g('medvault_agent_store_watching', '1 when the watcher follows events (0: scanning or folder missing)', ['store']);
  const diskOk = g('medvault_agent_disk_ok', '1 when the backup disk\'s repository is usable', ['path']);
  const alerts = g('medvault_agent_alerts_open', 'open alerts by severity', ['severity']);
  const collect = () => {
    const s = status();
    if (!s) return;
    backlogObjects.set(s.backlog.objects);
    backlogBytes.set(s.backlog.bytes);
    for (const st of s.stores) {
      if (st.lastSnapshot) lastSnapshot.set({ store: st.name }, st.lastSnapshot.time / 1000);
      if (st.lastJob) lastJobOk.set({ store: st.name }, st.lastJob.result === 'ok' ? 1 : 0);
      if (st.watcher) watching.set({ store: st.name }, st.watcher.state === 'watching' ? 1 : 0);
    }
    for (const d of s.disks) diskOk.set({ path: d.path }, d.ok ? 1 : 0);
    for (const sev of ['info', 'warning', 'critical']) alerts.set({ severity: sev }, s.alerts.filter((a) => a.severity === sev).length);
  };
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    collect();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : port, close: () => new Promise((r) => server.close(() => r())) };
}
