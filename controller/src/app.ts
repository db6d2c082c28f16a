/**
 * Builds and starts the controller from its dependencies (NATS, signing key, clock, config, log):
 * streams → projections caught up → ingest → HTTP API. `main.ts` supplies the real ones; tests
 * supply a real nats-server and an injected clock.
 */
import { canonicalJson, type SigningKey } from '@medvault/protocol';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditTrail, type AuditSink } from './audit/trail.js';
import { Authenticator } from './auth/authenticator.js';
import { SessionStore } from './auth/sessions.js';
import { USERS_BUCKET, UserStore } from './auth/user-store.js';
import type { Tail } from './bus.js';
import type { ControllerConfig } from './config.js';
import { FleetRegistry } from './fleet/registry.js';
import { buildApi } from './http/server.js';
import { Ingestor } from './ingest/ingestor.js';
import { OffsiteIndex } from './ingest/offsite-index.js';
import { damageFindings } from './offsite/scrub.js';
import type { Log } from './log.js';
import type { Nats } from './nats.js';
import { OrderBook } from './orders/order-book.js';
import { APPROVALS_BUCKET, Approvals } from './orders/approvals.js';
import { OrderIssuer } from './orders/order-issuer.js';
import { followStreams } from './projections.js';
import { DrillBook, MAX_DRILLS } from './drills/drill-book.js';
import { DrillIssuer } from './drills/drill-issuer.js';
import { DrillScheduler, drillHealthPolicy, drillsConfigSchema } from './drills/drill-schedule.js';
import { drillView, registerDrillRoutes } from './drills/routes.js';
import { startFleetHealth, type FleetHealth } from './health/fleet-health.js';
import { startOffsiteCare, type OffsiteCare } from './offsite/care.js';
import { HOLDS_BUCKET, HoldBook } from './offsite/holds.js';
import { registerHoldRoutes } from './offsite/holds-routes.js';
import { RetentionBook } from './offsite/retention.js';
import { INCIDENTS_BUCKET, IncidentDesk, incidentNotifier } from './incidents/incidents.js';
import { registerRecordRoutes } from './reports/routes.js';

export interface AppDeps {
  nats: Pick<Nats, 'bus' | 'bucket' | 'ensureStreams'>;
  key: SigningKey;
  clock: () => number;
  config: Pick<ControllerConfig, 'http' | 'sessions' | 'ingest'> & Partial<Pick<ControllerConfig, 'orders' | 'break_glass' | 'state_dir' | 'alerts' | 'drills' | 'incidents' | 'nats' | 'offsite'>>;
  log: Log;
  /** Start the inbox consumer (default true); tests of the API alone may skip it. */
  ingest?: boolean;
}

export interface App {
  readonly url: string;
  readonly fleet: FleetRegistry;
  readonly index: OffsiteIndex;
  readonly book: OrderBook;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly ingestor: Ingestor;
  readonly audit: AuditSink;
  readonly approvals: Approvals;
  /** Fleet health, alerts and the dashboard's live hub. */
  readonly health: FleetHealth;
  /** Drill orders and results (reports are made from them on request). */
  readonly drills: DrillBook;
  /** Scrub, reconcile requests and off-site retention. */
  readonly offsite: OffsiteCare;
  /** What each snapshot needs off site, and what was pruned. */
  readonly retention: RetentionBook;
  /** Legal holds on snapshots (never pruned). */
  readonly holds: HoldBook;
  /** SOP 5.5 incident records. */
  readonly incidents: IncidentDesk;
  /** Stops HTTP, ingest and the stream followers; the NATS connection stays open (the caller owns it). */
  stop(): Promise<void>;
}

export async function startApp(d: AppDeps): Promise<App> {
  const { bus } = d.nats;
  await d.nats.ensureStreams();
  const index = new OffsiteIndex();
  const book = new OrderBook();
  const fleet = new FleetRegistry();
  const drills = new DrillBook();
  fleet.onApply((_site, _type, _time, msg) => void (msg.type === 'mv.drill-result.v1' && drills.addResult(msg)));
  const retention = new RetentionBook();
  fleet.onApply((_site, _type, time, msg) => {
    const why = msg.type === 'mv.snapshot-needs.v1' ? retention.add(msg, time) : undefined;
    if (why) d.log.warn({ site: _site, reason: why }, 'needs list ignored');
  });
  const tails: Tail[] = await followStreams(bus, { index, book, fleet, drills, retention }, d.log.child({ component: 'projections' }));
  d.log.info({ sites: fleet.sites().length, offsiteSites: index.sites().length }, 'projections rebuilt from JetStream');

  const ingestor = new Ingestor({
    bus,
    index,
    key: d.key,
    clock: d.clock,
    log: d.log.child({ component: 'ingest' }),
    limits: { maxObjectBytes: d.config.ingest.max_object_bytes },
  });
  if (d.ingest ?? true) await ingestor.start();

  // The audit trail first: from here on every login, order, approval and key use is recorded.
  const auditLog = d.log.child({ component: 'audit' });
  const audit = new AuditTrail({ bus, clock: d.clock, log: auditLog });
  const system = { kind: 'controller' as const, id: 'controller' };
  if (d.config.state_dir) await audit.drainPending(d.config.state_dir);
  const { orders = { four_eyes_overwrite: false }, break_glass = { enabled: true, session_minutes: 30 } } = d.config;
  const configDigest = createHash('sha256').update(canonicalJson({ http: d.config.http, sessions: d.config.sessions, ingest: d.config.ingest, orders, break_glass })).digest('hex');
  if (d.config.state_dir) {
    const file = join(d.config.state_dir, 'config.sha256');
    const before = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
    if (before !== configDigest) {
      await audit.record({ actor: system, action: 'config.change', object: 'controller.toml', result: 'ok', detail: { from: before ?? null, to: configDigest } });
      writeFileSync(file, `${configDigest}\n`, { mode: 0o600 });
    }
  }
  await audit.record({ actor: system, action: 'controller.start', object: `key:${d.key.kid}`, result: 'ok', detail: { config: configDigest, kid: d.key.kid, fourEyes: orders.four_eyes_overwrite, breakGlass: break_glass.enabled } });
  // Controller-wide alerts (break-glass): audited first, then logged and sent through the fleet
  // notifier (webhooks, e-mail) once it runs.
  let notify: ((a: { code: string; severity: 'warning' | 'critical'; subject: string; message: string }) => void) | undefined;
  const alert = async (a: { code: string; severity: 'warning' | 'critical'; subject: string; message: string }) => {
    await audit.record({ actor: system, action: 'alert', object: a.subject, result: 'ok', detail: { code: a.code, severity: a.severity, message: a.message } });
    auditLog.error({ alert: a.code, severity: a.severity, subject: a.subject }, a.message);
    notify?.(a);
  };

  const users = new UserStore(await d.nats.bucket(USERS_BUCKET, { history: 5 }));
  const sessions = new SessionStore(d.clock, { idleMs: d.config.sessions.idle_timeout_s * 1000, maxMs: d.config.sessions.max_age_s * 1000 });
  const auth = new Authenticator({
    users, sessions, clock: d.clock, log: d.log.child({ component: 'auth' }), audit, alert,
    breakGlass: { enabled: break_glass.enabled, sessionMs: break_glass.session_minutes * 60_000 },
  });
  const knownSite = (site: string) => fleet.hasSite(site) || index.totals(site).objects > 0;
  const issuer = new OrderIssuer({ bus, book, key: d.key, clock: d.clock, log: d.log.child({ component: 'orders' }), knownSite, audit });
  // Drills (SOP 5.4): on demand through the API, and per store on the [drills] schedule.
  const drillIssuer = new DrillIssuer({ bus, book: drills, fleet, key: d.key, clock: d.clock, log: d.log.child({ component: 'drills' }), audit });
  const drillScheduler = new DrillScheduler({
    config: d.config.drills ?? drillsConfigSchema.parse(undefined), clock: d.clock, log: d.log.child({ component: 'drills' }),
    book: drills, issue: (r) => drillIssuer.issue(r, { kind: 'scheduler', id: 'drill-schedule' }),
    sites: () => fleet.sites().map((s) => ({ site: s.site, firstSeenAt: s.firstSeenAt, stores: drillIssuer.storesOf(s.site) })),
  });
  drillScheduler.start();
  const approvals = new Approvals({ kv: await d.nats.bucket(APPROVALS_BUCKET, { history: 5 }), issuer, clock: d.clock, audit });
  const health = await startFleetHealth({
    nats: d.nats, fleet, book, clock: d.clock, log: d.log, audit, ingestStats: () => ingestor.stats(), session: (t) => auth.session(t),
    policy: drillHealthPolicy(d.config.drills),
    ...(d.config.alerts ? { alerts: d.config.alerts } : {}),
    findings: (site) => damageFindings(index, site),
  });
  drills.onChange((e) => health.live.broadcast({ type: 'drill', drill: drillView(e) }));
  const holds = new HoldBook({ kv: await d.nats.bucket(HOLDS_BUCKET, { history: 20 }), audit, clock: d.clock });
  const offsite = await startOffsiteCare({
    bus, index, fleet, key: d.key, clock: d.clock, log: d.log.child({ component: 'offsite' }), audit, retention, holds: () => holds.list(),
    ...(d.config.offsite ? { config: d.config.offsite } : {}),
  });
  notify = (a) => {
    const now = d.clock();
    health.notifier.notify({
      kind: 'open',
      alert: { id: randomUUID(), site: '(controller)', key: `${a.code}:${a.subject}`, code: a.code, severity: a.severity, message: a.message, source: 'controller', state: 'open', openedAt: now, updatedAt: now, updates: 0 },
    });
  };
  // Backup log, incidents and compliance reports (SOP 5.1, 5.4, 5.5, 6).
  const incidents = new IncidentDesk({
    kv: await d.nats.bucket(INCIDENTS_BUCKET, { history: 10 }), bus, alerts: health.alerts, fleet, book, audit, clock: d.clock,
    notify: incidentNotifier(d.config.incidents, d.config.alerts, d.log.child({ component: 'incidents' })),
  });
  const transport = { servers: d.config.nats?.servers ?? [], tls: Boolean(d.config.nats?.ca_file) || (d.config.nats?.servers.every((u) => u.startsWith('tls://')) ?? false), https: Boolean(d.config.http.cert_file) };
  const records = { bus, fleet, incidents, audit, key: d.key, clock: d.clock, evidence: { index, users: () => users.list(), drills: () => drills.list(undefined, MAX_DRILLS), transport } };
  const api = buildApi({
    auth, fleet, index, book, issuer, clock: d.clock, log: d.log.child({ component: 'http' }), ingestStats: () => ingestor.stats(),
    audit, approvals, fourEyesOverwrite: orders.four_eyes_overwrite, routes: (app, need) => {
      health.routes(app, need);
      registerDrillRoutes(app, need, { book: drills, issuer: drillIssuer, key: d.key, scheduler: drillScheduler });
      registerRecordRoutes(app, need, records);
      registerHoldRoutes(app, need, { holds, retention, fleet });
    },
    ...(d.config.http.cert_file && d.config.http.key_file ? { tls: { cert: readFileSync(d.config.http.cert_file, 'utf8'), key: readFileSync(d.config.http.key_file, 'utf8') } } : {}),
  });
  await api.listen({ host: d.config.http.host, port: d.config.http.port });
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : d.config.http.port;
  const host = d.config.http.host.includes(':') ? `[${d.config.http.host}]` : d.config.http.host;
  const url = `${d.config.http.cert_file ? 'https' : 'http'}://${host}:${port}`;
  d.log.info({ url }, 'listening');

  return {
    url,
    fleet,
    index,
    book,
    users,
    sessions,
    ingestor,
    audit,
    approvals,
    health,
    drills,
    incidents,
    offsite,
    retention,
    holds,
    async stop() {
      await drillScheduler.stop();
      offsite.stop();
      await health.stop();
      await api.close();
      await ingestor.stop();
      await Promise.all(tails.map((t) => t.stop()));
    },
  };
}
