/**
 * Puts fleet health together for app.ts: the alert book (loaded from MV_ALERTS), the notifier,
 * the health monitor following the fleet, the dashboard's live hub and routes, and /metrics.
 * Start it after the projections have caught up, so replayed history raises no alerts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { AlertBook } from '../alerts/alert-book.js';
import { ALERTS_BUCKET, AlertStore } from '../alerts/alert-store.js';
import { Notifier, alertsConfigSchema, type AlertsConfig } from '../alerts/notifier.js';
import type { AuditSink } from '../audit/trail.js';
import type { Role } from '../auth/roles.js';
import type { Session } from '../auth/sessions.js';
import { LiveHub } from '../dashboard/live.js';
import { registerDashboard } from '../dashboard/routes.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { IngestStats } from '../ingest/ingestor.js';
import type { Log } from '../log.js';
import { createMetrics } from '../metrics/metrics.js';
import type { Nats } from '../nats.js';
import { orderView, type OrderBook } from '../orders/order-book.js';
import type { Finding, HealthPolicy, Verification } from './assess.js';
import { HealthMonitor } from './monitor.js';

export interface FleetHealthDeps {
  nats: Pick<Nats, 'bucket'>;
  fleet: FleetRegistry;
  book: OrderBook;
  clock: () => number;
  log: Log;
  audit?: AuditSink;
  alerts?: AlertsConfig;
  policy?: HealthPolicy;
  ingestStats?: () => IngestStats;
  /** Drills per site, when drills land (their outcome counts like a verified restore). */
  drills?: (site: string) => Verification[];
  session: (token: string) => (Session & { expiresAt: number }) | undefined;
  /** Controller-side findings per site beyond assessSite's (damaged off-site copies). */
  findings?: (site: string) => Finding[];
}

export interface FleetHealth {
  readonly monitor: HealthMonitor;
  readonly alerts: AlertBook;
  readonly notifier: Notifier;
  readonly live: LiveHub;
  routes(app: FastifyInstance, need: (role: Role) => (req: FastifyRequest) => Promise<void>): void;
  stop(): Promise<void>;
}

export async function startFleetHealth(d: FleetHealthDeps): Promise<FleetHealth> {
  const log = d.log.child({ component: 'health' });
  const config = d.alerts ?? alertsConfigSchema.parse(undefined);
  const store = new AlertStore(await d.nats.bucket(ALERTS_BUCKET, { history: 5 }), log);
  const alerts = new AlertBook();
  alerts.load(await store.loadAll());
  const notifier = new Notifier({
    config, log: d.log.child({ component: 'notify' }),
    ...(config.smtp?.password_file ? { smtpPassword: readFileSync(config.smtp.password_file, 'utf8').trim() } : {}),
  });
  const monitor = new HealthMonitor({ fleet: d.fleet, book: d.book, alerts, clock: d.clock, ...(d.policy ? { policy: d.policy } : {}), ...(d.drills ? { drills: d.drills } : {}), ...(d.findings ? { findings: d.findings } : {}) });
  const live = new LiveHub({ clock: d.clock, snapshot: () => ({ time: d.clock(), counts: monitor.counts(), sites: monitor.summaries(), alerts: alerts.list({ state: 'open' }) }) });
  alerts.onChange((c) => {
    store.save(c.alert);
    notifier.notify(c);
    live.broadcast({ type: 'alert', change: c.kind, alert: c.alert });
    const level = c.alert.severity === 'critical' && c.kind !== 'resolve' ? 'error' : 'info';
    log[level]({ alert: c.alert.code, site: c.alert.site, key: c.alert.key, change: c.kind, severity: c.alert.severity }, c.alert.message);
  });
  monitor.onChange((s) => live.broadcast({ type: 'site', site: s, time: d.clock() }));
  d.fleet.onApply((_site, type, _time, msg) => {
    if (msg.type !== 'mv.order-status.v1') return;
    const o = d.book.get(msg.orderId);
    if (o) live.broadcast({ type: 'order', order: { id: o.id, ...orderView(o, d.fleet.statuses(o.id)) } });
    void type;
  });
  monitor.start();
  const metrics = createMetrics({ monitor, alerts, ...(d.ingestStats ? { ingest: d.ingestStats } : {}), notify: () => notifier.stats, liveClients: () => live.size });
  return {
    monitor, alerts, notifier, live,
    routes: (app, need) => registerDashboard(app, need, { fleet: d.fleet, book: d.book, monitor, alerts, live, metrics, ...(d.audit ? { audit: d.audit } : {}), clock: d.clock, session: d.session }),
    async stop() {
      monitor.stop();
      notifier.stop();
      live.close();
      await store.idle();
    },
  };
}
