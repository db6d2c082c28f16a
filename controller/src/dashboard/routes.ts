/**
 * dashboard/: central IT's view of the fleet, served by the controller. The page (`controller/web`,
 * lit 3 + uPlot as ES modules from node_modules through an import map, no build step) uses only
 * the JSON API below, plus one WebSocket (`/api/v1/live`) for live changes.
 *
 * | route                                   | role        |
 * |-----------------------------------------|-------------|
 * | GET  /  and /ui/*                       | none (static page; it logs in with password + TOTP) |
 * | GET  /api/v1/fleet                      | viewer: every site's state, last backup, RPO, off-site lag, disks |
 * | GET  /api/v1/sites/:site/health         | viewer: state and reasons per site and store, disks |
 * | GET  /api/v1/sites/:site/timeline       | viewer: snapshots, runs and series for the plots |
 * | GET  /api/v1/sites/:site/orders         | viewer: the site's restore orders |
 * | GET  /api/v1/alerts?state=&site=&limit= | viewer      |
 * | POST /api/v1/alerts/:id/ack {note?}     | technician (audited) |
 * | GET  /api/v1/live (WebSocket)           | first message `{type:"auth", token}` |
 * | GET  /metrics                           | none (Prometheus text) |
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MedvaultError, codes, site as siteSchema } from '@medvault/protocol';
import type { AlertBook } from '../alerts/alert-book.js';
import type { AuditSink } from '../audit/trail.js';
import type { Role } from '../auth/roles.js';
import type { Session } from '../auth/sessions.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { HealthMonitor } from '../health/monitor.js';
import { parseInput } from '../http/validate.js';
import type { Metrics } from '../metrics/metrics.js';
import { orderView, type OrderBook } from '../orders/order-book.js';
import type { LiveHub } from './live.js';

export interface DashboardDeps {
  fleet: FleetRegistry;
  book: OrderBook;
  monitor: HealthMonitor;
  alerts: AlertBook;
  live: LiveHub;
  metrics: Metrics;
  audit?: AuditSink;
  clock: () => number;
  session: (token: string) => (Session & { expiresAt: number }) | undefined;
}

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = (name: string, from?: string) => {
  const r = from ? createRequire(from) : require;
  let d = dirname(r.resolve(name));
  while (!d.endsWith(`${sep}${name.split('/').join(sep)}`) && d !== dirname(d)) d = dirname(d);
  return d;
};
const litDir = pkgDir('lit');
const litIndex = join(litDir, 'index.js');
const vendor: Record<string, string> = {
  lit: litDir,
  'lit-html': pkgDir('lit-html', litIndex),
  'lit-element': pkgDir('lit-element', litIndex),
  '@lit/reactive-element': pkgDir('@lit/reactive-element', litIndex),
  uplot: join(pkgDir('uplot'), 'dist'),
};
export const importMap = JSON.stringify({
  imports: {
    lit: '/ui/vendor/lit/index.js', 'lit/': '/ui/vendor/lit/',
    'lit-html': '/ui/vendor/lit-html/lit-html.js', 'lit-html/': '/ui/vendor/lit-html/',
    'lit-element/': '/ui/vendor/lit-element/',
    '@lit/reactive-element': '/ui/vendor/@lit/reactive-element/reactive-element.js', '@lit/reactive-element/': '/ui/vendor/@lit/reactive-element/',
    uplot: '/ui/vendor/uplot/uPlot.esm.js',
  },
});
const importMapHash = createHash('sha256').update(importMap).digest('base64');
const CSP = [
  "default-src 'self'", `script-src 'self' 'sha256-${importMapHash}'`, "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
  "connect-src 'self' ws: wss:", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
].join('; ');
const types: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml' };

/** A file under `root` by a relative URL path, or undefined: no '..', only known types. */
async function staticFile(root: string, rel: string): Promise<{ body: Buffer; type: string } | undefined> {
  const clean = normalize(`/${decodeURIComponent(rel)}`).slice(1);
  if (clean.split(/[\\/]/).includes('..') || clean.includes('\0')) return undefined;
  const ext = /\.[a-z]+$/.exec(clean)?.[0] ?? '';
  const type = types[ext];
  if (!type) return undefined;
  try {
    return { body: await readFile(join(root, clean)), type };
  } catch {
    return undefined;
  }
}

const siteParams = z.strictObject({ site: siteSchema });
const idParams = z.strictObject({ id: z.string().regex(/^[0-9a-f-]{36}$/, 'an alert id') });
const alertQuery = z.strictObject({
  state: z.enum(['open', 'resolved', 'all']).default('open'),
  site: siteSchema.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
const ackBody = z.strictObject({ note: z.string().max(1000).optional() });

/** Registers the dashboard's page, API routes, WebSocket and /metrics on `app`. */
export function registerDashboard(app: FastifyInstance, need: (role: Role) => (req: FastifyRequest) => Promise<void>, d: DashboardDeps): void {
  const headers = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
  let indexHtml: string | undefined;
  const page = async () => (indexHtml ??= (await readFile(join(WEB, 'index.html'), 'utf8')).replace('<!--importmap-->', `<script type="importmap">${importMap}</script>`));
  const known = (site: string) => {
    if (!d.fleet.hasSite(site)) throw new MedvaultError(codes.NOT_FOUND, `site ${site} is unknown to this controller`);
    return site;
  };

  app.get('/', async (_req, reply) => reply.headers({ ...headers, 'content-type': types['.html']!, 'cache-control': 'no-store' }).send(await page()));
  app.get('/ui/*', async (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    const v = /^vendor\/((?:@lit\/)?[a-z-]+)\/(.+)$/.exec(rel);
    const f = v ? (vendor[v[1]!] ? await staticFile(vendor[v[1]!]!, v[2]!) : undefined) : await staticFile(WEB, rel);
    if (!f) throw new MedvaultError(codes.NOT_FOUND, `no file /ui/${rel}`);
    return reply.headers({ ...headers, 'content-type': f.type, 'cache-control': v ? 'public, max-age=3600' : 'no-cache' }).send(f.body);
  });

  app.get('/metrics', async (_req, reply) => reply.header('content-type', d.metrics.contentType).send(await d.metrics.render()));

  app.get('/api/v1/fleet', { preHandler: need('viewer') }, async () => ({ time: d.clock(), counts: d.monitor.counts(), sites: d.monitor.summaries() }));

  app.get('/api/v1/sites/:site/health', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    const h = d.monitor.health(known(site))!;
    return { ...h, summary: d.monitor.summary(h), alerts: d.alerts.list({ site, limit: 200, state: 'open' }) };
  });

  app.get('/api/v1/sites/:site/timeline', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    known(site);
    const snaps = d.fleet.snapshots(site).slice(0, 2000).reverse();
    const runs = d.fleet.log(site, 2000).reverse();
    return {
      site,
      snapshots: snaps.map((s) => ({ id: s.id, store: s.store, job: s.job, time: s.time, files: s.files, bytes: s.bytes })),
      runs: runs.map((r) => ({ jobId: r.jobId, job: r.job, store: r.store, startedAt: r.startedAt, endedAt: r.endedAt, result: r.result, files: r.files, bytes: r.bytes, actor: r.actor, ...(r.snapshot ? { snapshot: r.snapshot } : {}), errors: r.errors.length })),
      rpo: d.monitor.series(site),
    };
  });

  app.get('/api/v1/sites/:site/orders', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    known(site);
    const orders = d.fleet.orderIds(site).flatMap((id) => {
      const o = d.book.get(id);
      return o ? [{ id, ...orderView(o, d.fleet.statuses(id)) }] : [];
    });
    return { site, orders: orders.reverse() };
  });

  app.get('/api/v1/alerts', { preHandler: need('viewer') }, async (req) => {
    const q = parseInput(alertQuery, req.query, 'query');
    return { alerts: d.alerts.list({ ...(q.state !== 'all' ? { state: q.state } : {}), ...(q.site ? { site: q.site } : {}), limit: q.limit }), counts: d.alerts.counts() };
  });

  app.post('/api/v1/alerts/:id/ack', { preHandler: need('technician') }, async (req) => {
    const { id } = parseInput(idParams, req.params, 'path');
    const { note } = parseInput(ackBody, req.body, 'ack');
    const user = req.mvSession!.user;
    const a = d.alerts.acknowledge(id, user, d.clock(), note);
    await d.audit?.record({ actor: { kind: 'user', id: user }, action: 'alert.ack', object: `alert:${a.id}`, result: 'ok', detail: { site: a.site, code: a.code, key: a.key.slice(0, 300), note: note ?? null } });
    return { alert: a };
  });

  void app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  void app.register(async (scope) => {
    scope.get('/api/v1/live', { websocket: true }, (socket) => d.live.accept(socket, d.session));
  });
}
