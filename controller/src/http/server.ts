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
 * | POST /api/v1/orders              | technician  |
 * | GET  /api/v1/orders/:id          | viewer      |
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MedvaultError, codes, orderId, site as siteSchema } from '@medvault/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { hasRole, type Role } from '../auth/roles.js';
import type { Session } from '../auth/sessions.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { IngestStats } from '../ingest/ingestor.js';
import type { OffsiteIndex } from '../ingest/offsite-index.js';
import type { Log } from '../log.js';
import { orderView, type OrderBook } from '../orders/order-book.js';
import type { OrderIssuer } from '../orders/order-issuer.js';
import { orderRequestSchema } from '../orders/order-request.js';
import { errorBody, toHttpError } from './errors.js';
import { parseInput } from './validate.js';
import { siteDetail, siteSummary } from './views.js';

export interface ApiDeps {
  auth: Pick<Authenticator, 'login' | 'logout' | 'session'>;
  fleet: FleetRegistry;
  index: OffsiteIndex;
  book: OrderBook;
  issuer: Pick<OrderIssuer, 'issue'>;
  clock: () => number;
  log: Log;
  ingestStats?: () => IngestStats;
  /** Login attempts per client address per minute. */
  loginRatePerMinute?: number;
}

const loginBody = z.strictObject({
  user: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^[0-9]{6}$/, 'a 6-digit code'),
});
const siteParams = z.strictObject({ site: siteSchema });
const orderParams = z.strictObject({ id: orderId });
const logQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) });

declare module 'fastify' {
  interface FastifyRequest {
    mvSession?: Session;
  }
}

export function buildApi(d: ApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024, trustProxy: false });
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
    const r = await d.auth.login(body.user, body.password, body.totp);
    return { token: r.token, expiresAt: r.expiresAt, role: r.role, user: r.user };
  });

  app.post('/api/v1/logout', { preHandler: need('viewer') }, async (req) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization!)![1]!;
    d.auth.logout(token);
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
    const order = await d.issuer.issue(body, { user: req.mvSession!.user });
    void reply.status(201);
    return { id: order.id, ...orderView(order, []) };
  });

  app.get('/api/v1/orders/:id', { preHandler: need('viewer') }, async (req) => {
    const { id } = parseInput(orderParams, req.params, 'path');
    const order = d.book.get(id);
    if (!order) throw new MedvaultError(codes.NOT_FOUND, `order ${id} is unknown`);
    return { id, ...orderView(order, d.fleet.statuses(id)) };
  });

  return app;
}
