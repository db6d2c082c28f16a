/**
 * http/: the controller's JSON API under /api/v1 (fastify). Every route but /health needs a bearer
 * token from /login; errors are `{error: {code, message}}` (see errors.ts).
 *
 * | route                            | role        |
 * |----------------------------------|-------------|
 * | GET  /api/v1/health              | none        |
 * | POST /api/v1/login               | none (rate limited) |
 * | POST /api/v1/logout              | any session |
 * | GET  /api/v1/sites[/:site[/snapshots,/log]] | viewer |
 * | POST /api/v1/break-glass         | none: password + second factor, technician or admin (rate limited) |
 * | POST /api/v1/orders              | technician  |
 * | POST /api/v1/orders/:id/approve  | technician, not the requester (four-eyes) |
 * | POST /api/v1/orders/:id/reject   | technician  |
 * | GET  /api/v1/orders/:id          | viewer      |
 *
 * Logins, logouts, orders, approvals and every request of a break-glass session are audited.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MedvaultError, codes, newOrderId, orderId, site as siteSchema } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Authenticator } from '../auth/authenticator.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { hasRole, type Role } from '../auth/roles.js';
import type { Session } from '../auth/sessions.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { IngestStats } from '../ingest/ingestor.js';
import type { OffsiteIndex } from '../ingest/offsite-index.js';
import type { Log } from '../log.js';
import { orderView, type OrderBook } from '../orders/order-book.js';
import { pendingState, type Approvals } from '../orders/approvals.js';
import type { OrderIssuer } from '../orders/order-issuer.js';
import { orderRequestSchema } from '../orders/order-request.js';
import { errorBody, toHttpError } from './errors.js';
import { parseInput } from './validate.js';
import { siteDetail, siteSummary } from './views.js';

export interface ApiDeps {
  auth: Pick<Authenticator, 'login' | 'logout' | 'session' | 'breakGlass'>;
  audit?: AuditSink;
  /** Four-eyes approval of in-place overwrites (config orders.four_eyes_overwrite). */
  approvals?: Approvals;
  fourEyesOverwrite?: boolean;
  fleet: FleetRegistry;
  index: OffsiteIndex;
  book: OrderBook;
  issuer: Pick<OrderIssuer, 'issue'>;
  clock: () => number;
  log: Log;
  ingestStats?: () => IngestStats;
  /** Login attempts per client address per minute. */
  loginRatePerMinute?: number;
  /** More routes on the same app and auth (the dashboard, /metrics): gets the role guard. */
  routes?: (app: FastifyInstance, need: (role: Role) => (req: FastifyRequest) => Promise<void>) => void;
  /** HTTPS: PEM certificate and key (else plain HTTP, for loopback behind a TLS proxy). */
  tls?: { cert: string; key: string };
}

const loginFields = {
  user: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^[0-9]{6}$/, 'a 6-digit code').optional(),
  /** A single-use recovery code instead of the TOTP code. */
  recoveryCode: z.string().regex(/^[A-Za-z2-7]{5}-?[A-Za-z2-7]{5}$/, 'a recovery code like abcde-fghij').optional(),
};
const oneFactor = (b: { totp?: string | undefined; recoveryCode?: string | undefined }) => (b.totp === undefined) !== (b.recoveryCode === undefined);
const loginBody = z.strictObject(loginFields).refine(oneFactor, 'give exactly one of totp and recoveryCode');
const breakGlassBody = z
  .strictObject({ ...loginFields, reason: z.string().min(10, 'say why (at least 10 characters)').max(1000) })
  .refine(oneFactor, 'give exactly one of totp and recoveryCode');
const decisionBody = z.strictObject({ reason: z.string().max(1000).default('') });
const siteParams = z.strictObject({ site: siteSchema });
const orderParams = z.strictObject({ id: orderId });
const logQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) });

declare module 'fastify' {
  interface FastifyRequest {
    mvSession?: Session;
  }
}

export function buildApi(d: ApiDeps): FastifyInstance {
  const app = (d.tls
    ? Fastify({ logger: false, bodyLimit: 256 * 1024, trustProxy: false, https: { cert: d.tls.cert, key: d.tls.key, minVersion: 'TLSv1.2' } })
    : Fastify({ logger: false, bodyLimit: 256 * 1024, trustProxy: false })) as unknown as FastifyInstance;
  const perAddress = new RateLimiter(d.clock, { max: d.loginRatePerMinute ?? 10, windowMs: 60_000 });
  const perUser = new RateLimiter(d.clock, { max: d.loginRatePerMinute ?? 10, windowMs: 60_000 });

  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    if (e.internal) d.log.error({ err, method: req.method, url: req.url }, 'request failed');
    if (e.status === 429 && !reply.hasHeader('retry-after')) void reply.header('retry-after', '60');
    void reply.status(e.status).send(e.body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody(codes.NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  app.addHook('onResponse', async (req, reply) => {
    d.log.info({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, user: req.mvSession?.user, ms: Math.round(reply.elapsedTime) }, 'http');
    const s = req.mvSession;
    if (s?.breakGlass) {
      await d.audit
        ?.record({ actor: { kind: 'user', id: s.user }, action: 'break-glass.request', object: `${req.method} ${req.url.split('?')[0]}`.slice(0, 1000), result: reply.statusCode < 400 ? 'ok' : 'refused', detail: { status: reply.statusCode } })
        .catch((err) => d.log.error({ err }, 'cannot audit a break-glass request'));
    }
  });

  const need = (role: Role) => async (req: FastifyRequest) => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer ([A-Za-z0-9_-]{43})$/.exec(h) : null;
    if (!m) throw new MedvaultError(codes.AUTH_FAILED, 'log in first: Authorization: Bearer <token> is missing or malformed');
    const s = d.auth.session(m[1]!);
    if (!s) throw new MedvaultError(codes.AUTH_FAILED, 'session expired or logged off: log in again');
    req.mvSession = s;
    if (!hasRole(s.role, role)) throw new MedvaultError(codes.AUTH_FORBIDDEN, `this needs the ${role} role; ${s.user} is ${s.role}`);
  };
  const knownSite = (site: string) => d.fleet.hasSite(site) || d.index.totals(site).objects > 0;
  const siteOr404 = (site: string) => {
    if (!knownSite(site)) throw new MedvaultError(codes.NOT_FOUND, `site ${site} is unknown to this controller`);
    return site;
  };

  app.get('/api/v1/health', async () => ({ status: 'ok', time: d.clock(), ...(d.ingestStats ? { ingest: d.ingestStats() } : {}) }));

  app.post('/api/v1/login', async (req, reply: FastifyReply) => {
    const limited = (r: ReturnType<RateLimiter['take']>) => {
      if (!r.ok) {
        void reply.header('retry-after', String(Math.ceil(r.retryAfterMs / 1000)));
        throw new MedvaultError(codes.RATE_LIMITED, 'too many login attempts: wait a minute');
      }
    };
    limited(perAddress.take(req.ip));
    const body = parseInput(loginBody, req.body, 'login');
    limited(perUser.take(body.user));
    const r = await d.auth.login(body.user, body.password, (body.totp ?? body.recoveryCode)!, { ip: req.ip });
    return { token: r.token, expiresAt: r.expiresAt, endsBy: r.endsBy, role: r.role, user: r.user, ...(r.recoveryCodesLeft !== undefined ? { recoveryCodesLeft: r.recoveryCodesLeft } : {}) };
  });

  app.post('/api/v1/break-glass', async (req, reply: FastifyReply) => {
    const r1 = perAddress.take(req.ip);
    if (!r1.ok) {
      void reply.header('retry-after', String(Math.ceil(r1.retryAfterMs / 1000)));
      throw new MedvaultError(codes.RATE_LIMITED, 'too many login attempts: wait a minute');
    }
    const body = parseInput(breakGlassBody, req.body, 'break-glass');
    const r = await d.auth.breakGlass(body.user, body.password, (body.totp ?? body.recoveryCode)!, body.reason, { ip: req.ip });
    return { token: r.token, expiresAt: r.expiresAt, endsBy: r.endsBy, role: r.role, user: r.user, breakGlass: true };
  });

  app.post('/api/v1/logout', { preHandler: need('viewer') }, async (req) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization!)![1]!;
    d.auth.logout(token);
    await d.audit?.record({ actor: { kind: 'user', id: req.mvSession!.user }, action: 'logout', object: `user:${req.mvSession!.user}`, result: 'ok' });
    return { ok: true };
  });

  app.get('/api/v1/sites', { preHandler: need('viewer') }, async () => {
    const names = new Set([...d.fleet.sites().map((s) => s.site), ...d.index.sites()]);
    return { sites: [...names].sort().map((s) => siteSummary(s, d.fleet, d.index)) };
  });

  app.get('/api/v1/sites/:site', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    return siteDetail(siteOr404(site), d.fleet, d.index);
  });

  app.get('/api/v1/sites/:site/snapshots', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    return { site: siteOr404(site), snapshots: d.fleet.snapshots(site) };
  });

  app.get('/api/v1/sites/:site/log', { preHandler: need('viewer') }, async (req) => {
    const { site } = parseInput(siteParams, req.params, 'path');
    const { limit } = parseInput(logQuery, req.query, 'query');
    return { site: siteOr404(site), entries: d.fleet.log(site, limit) };
  });

  app.post('/api/v1/orders', { preHandler: need('technician') }, async (req, reply) => {
    const body = parseInput(orderRequestSchema, req.body, 'order');
    siteOr404(body.site);
    if (body.snapshot === 'latest' && body.store === undefined) {
      // 'latest' of which store? With several, guessing could restore one store over another's folder.
      const stores = [...new Set(d.fleet.snapshots(body.site).map((x) => x.store))];
      if (stores.length > 1) throw new MedvaultError(codes.CONFIG_INVALID, `site ${body.site} has several record stores (${stores.join(', ')}): name the store for 'latest'`);
    }
    if (body.store !== undefined) {
      // A store the site never reported is refused here, before an order is signed and sent for the agent to fail.
      const known = [...new Set([...(d.fleet.site(body.site)?.heartbeat?.stores ?? []).map((x) => x.name), ...d.fleet.snapshots(body.site).map((x) => x.store)])];
      if (known.length > 0 && !known.includes(body.store)) throw new MedvaultError(codes.NOT_FOUND, `site ${body.site} has no store ${body.store} (it reports ${known.join(', ')})`);
    }
    if (body.snapshot !== 'latest' && body.snapshot.length < 64) {
      // The short ids `medvault snapshots` shows: resolve them against what the site reported.
      const matches = d.fleet.snapshots(body.site).filter((x) => x.id.startsWith(body.snapshot) && (body.store === undefined || x.store === body.store));
      if (matches.length === 0) throw new MedvaultError(codes.NOT_FOUND, `site ${body.site} has reported no snapshot ${body.snapshot}${body.store ? ` of store ${body.store}` : ''}`);
      if (matches.length > 1) throw new MedvaultError(codes.CONFLICT, `snapshot prefix ${body.snapshot} matches ${matches.length} snapshots of site ${body.site}; give more characters`);
      body.snapshot = matches[0]!.id;
    }
    const s = req.mvSession!;
    // Four-eyes, except in a break-glass session (an emergency with nobody to approve: audited as such).
    if (d.fourEyesOverwrite && body.mode === 'overwrite' && !s.breakGlass) {
      if (!d.approvals) throw new MedvaultError(codes.CONFIG_INVALID, 'four-eyes approval is on but no approval store is configured');
      const p = await d.approvals.request(body, s.user, newOrderId());
      void reply.status(202);
      return pendingView(p);
    }
    const order = await d.issuer.issue(body, { user: s.user, ...(s.breakGlass ? { breakGlass: true } : {}) });
    void reply.status(201);
    return { id: order.id, ...orderView(order, []) };
  });

  const pendingView = (p: NonNullable<Awaited<ReturnType<Approvals['get']>>>['pending']) => {
    const state = pendingState(p, d.clock());
    return {
      id: p.id, state, final: state === 'rejected' || state === 'expired', request: p.request, requestedBy: p.requestedBy, requestedAt: p.requestedAt,
      expiresAt: p.expiresAt, ...(p.decidedBy ? { decidedBy: p.decidedBy } : {}),
      ...(state === 'rejected' ? { reason: { code: codes.AUTH_FORBIDDEN, message: `rejected by ${p.decidedBy}: ${p.reason || 'no reason given'}` } } : {}),
      ...(state === 'expired' ? { reason: { code: codes.ORDER_EXPIRED, message: 'nobody approved it in time' } } : {}),
      history: [],
    };
  };

  app.post('/api/v1/orders/:id/approve', { preHandler: need('technician') }, async (req) => {
    const { id } = parseInput(orderParams, req.params, 'path');
    if (!d.approvals) throw new MedvaultError(codes.NOT_FOUND, 'four-eyes approval is not enabled on this controller');
    const s = req.mvSession!;
    const order = await d.approvals.approve(id, s.user, { ...(s.breakGlass ? { breakGlass: true } : {}) });
    return { id: order.id, ...orderView(order, d.fleet.statuses(order.id)) };
  });

  app.post('/api/v1/orders/:id/reject', { preHandler: need('technician') }, async (req) => {
    const { id } = parseInput(orderParams, req.params, 'path');
    const { reason } = parseInput(decisionBody, req.body, 'reject');
    if (!d.approvals) throw new MedvaultError(codes.NOT_FOUND, 'four-eyes approval is not enabled on this controller');
    return pendingView(await d.approvals.reject(id, req.mvSession!.user, reason));
  });

  app.get('/api/v1/orders/:id', { preHandler: need('viewer') }, async (req) => {
    const { id } = parseInput(orderParams, req.params, 'path');
    const order = d.book.get(id);
    if (!order) {
      const p = await d.approvals?.get(id);
      if (p) return pendingView(p.pending);
      throw new MedvaultError(codes.NOT_FOUND, `order ${id} is unknown`);
    }
    return { id, ...orderView(order, d.fleet.statuses(id)) };
  });

  d.routes?.(app, need);
  return app;
}
