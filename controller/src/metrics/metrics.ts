/**
 * metrics/: the controller's Prometheus metrics (`GET /metrics`), read at scrape time from the
 * health monitor, the alert book, ingest and the dashboard's live hub. The only file that imports
 * prom-client in the controller.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AlertBook } from '../alerts/alert-book.js';
import type { NotifyStats } from '../alerts/notifier.js';
import type { HealthMonitor } from '../health/monitor.js';
import { healthStates } from '../health/assess.js';
import type { IngestStats } from '../ingest/ingestor.js';

export interface MetricsSources {
  monitor: Pick<HealthMonitor, 'summaries' | 'counts' | 'assessments'>;
  alerts: Pick<AlertBook, 'counts'>;
  ingest?: () => IngestStats;
  notify?: () => NotifyStats;
  liveClients?: () => number;
}

export interface Metrics {
  contentType: string;
  render(): Promise<string>;
}

export function createMetrics(src: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'medvault_controller_' });
  const g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const sites = g('medvault_sites', 'sites by health state', ['state']);
  const siteState = g('medvault_site_state', 'health of each site: 0 ok, 1 warning, 2 critical, 3 offline', ['site']);
  const rpo = g('medvault_site_rpo_age_seconds', 'worst RPO age over the site\'s stores', ['site']);
  const lag = g('medvault_site_offsite_lag_seconds', 'age of the oldest object not yet off site', ['site']);
  const lastBackup = g('medvault_site_last_backup_timestamp_seconds', 'unix time of the site\'s newest snapshot', ['site']);
  const lastHeartbeat = g('medvault_site_last_heartbeat_timestamp_seconds', 'unix time the last heartbeat was stored', ['site']);
  const alerts = g('medvault_alerts_open', 'open alerts by severity', ['severity']);
  const acked = g('medvault_alerts_acknowledged', 'open alerts a person has acknowledged');
  const assessments = g('medvault_health_assessments', 'site assessments run since start');
  const ingest = g('medvault_ingest_objects', 'off-site objects handled since start, by result', ['result']);
  const notifications = g('medvault_notifications', 'alert notifications since start by result', ['result']);
  const clients = g('medvault_dashboard_clients', 'dashboard WebSocket connections');

  const collect = () => {
    const counts = src.monitor.counts();
    for (const s of healthStates) sites.set({ state: s }, counts[s]);
    siteState.reset();
    rpo.reset();
    lag.reset();
    lastBackup.reset();
    lastHeartbeat.reset();
    for (const s of src.monitor.summaries()) {
      siteState.set({ site: s.site }, healthStates.indexOf(s.state));
      if (s.rpoAgeS !== undefined) rpo.set({ site: s.site }, s.rpoAgeS);
      if (s.offsiteLagS !== undefined) lag.set({ site: s.site }, s.offsiteLagS);
      if (s.lastBackupAt) lastBackup.set({ site: s.site }, s.lastBackupAt / 1000);
      if (s.lastHeartbeatAt) lastHeartbeat.set({ site: s.site }, s.lastHeartbeatAt / 1000);
    }
    const a = src.alerts.counts();
    alerts.set({ severity: 'warning' }, a.warning);
    alerts.set({ severity: 'critical' }, a.critical);
    acked.set(a.acknowledged);
    assessments.set(src.monitor.assessments);
    const i = src.ingest?.();
    if (i) for (const k of ['stored', 'receipted', 'duplicates', 'refused', 'failed'] as const) ingest.set({ result: k }, i[k]);
    const n = src.notify?.();
    if (n) {
      notifications.set({ result: 'sent' }, n.sent);
      notifications.set({ result: 'failed' }, n.failed);
      notifications.set({ result: 'queued' }, n.queued);
    }
    if (src.liveClients) clients.set(src.liveClients());
  };
  return {
    contentType: registry.contentType,
    async render() {
      collect();
      return registry.metrics();
    },
  };
}
