/**
 * The drills' HTTP API (on the API's app and role guard):
 *
 * | route                                  | role       |
 * |----------------------------------------|------------|
 * | POST /api/v1/drills                    | technician: {site, store?, sample?, sources?}: one signed order per store |
 * | GET  /api/v1/drills[?site=]            | viewer     |
 * | GET  /api/v1/drills/schedule[?site=]   | viewer: per store the last drill, the next one, overdue or not |
 * | GET  /api/v1/drills/:id                | viewer: order and result |
 * | GET  /api/v1/drills/:id/report.:format | viewer: the signed report, json, html or pdf (404 until the result is in) |
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MedvaultError, ORDER_RE, codes, drillSources, site as siteSchema, type SigningKey } from '@medvault/protocol';
import type { Role } from '../auth/roles.js';
import { parseInput } from '../http/validate.js';
import { reportFormats } from '../reports/render.js';
import type { DrillBook, DrillEntry } from './drill-book.js';
import type { DrillIssuer } from './drill-issuer.js';
import { renderDrillReport } from './drill-report.js';
import type { DrillScheduler } from './drill-schedule.js';

const body = z.strictObject({
  site: siteSchema,
  store: z.string().min(1).max(200).optional(),
  sample: z.number().gt(0).max(1).default(1),
  sources: z.array(z.enum(drillSources)).min(1).max(2).default(['local', 'offsite']),
});
const listQuery = z.strictObject({ site: siteSchema.optional(), limit: z.coerce.number().int().min(1).max(10_000).default(200) });
const scheduleQuery = z.strictObject({ site: siteSchema.optional() });
/** A drill's id as it is asked for: whole (a prefix is not looked up), and named a drill's, not an order's. */
const drillId = z.string().regex(ORDER_RE, 'drill id: the whole UUID that medvault drill printed (GET /api/v1/drills lists them)');
const idParams = z.strictObject({ id: drillId });
const reportParams = z.strictObject({ id: drillId, format: z.enum(reportFormats) });
const contentTypes = { json: 'application/json', html: 'text/html; charset=utf-8', pdf: 'application/pdf' } as const;

/** A drill as the API shows it: state 'issued' until the agent's result arrives. */
export function drillView(e: DrillEntry) {
  return {
    id: e.id, site: e.site, store: e.store, state: e.result ? e.result.result : 'issued',
    ...(e.order ? { issuedAt: e.order.issuedAt, requestedBy: e.order.requestedBy, sample: e.order.sample, sources: e.order.sources } : {}),
    ...(e.result ? { result: e.result, report: { json: `/api/v1/drills/${e.id}/report.json`, html: `/api/v1/drills/${e.id}/report.html`, pdf: `/api/v1/drills/${e.id}/report.pdf` } } : {}),
  };
}

export function registerDrillRoutes(
  app: FastifyInstance,
  need: (role: Role) => (req: FastifyRequest) => Promise<void>,
  d: { book: DrillBook; issuer: Pick<DrillIssuer, 'issue'>; key: SigningKey; scheduler: Pick<DrillScheduler, 'outlook' | 'every'> },
): void {
  const entry = (id: string) => {
    const e = d.book.get(id);
    if (!e) throw new MedvaultError(codes.NOT_FOUND, `drill ${id} is unknown`);
    return e;
  };

  app.post('/api/v1/drills', { preHandler: need('technician') }, async (req, reply) => {
    const b = parseInput(body, req.body, 'drill');
    const orders = await d.issuer.issue(b, { kind: 'user', id: req.mvSession!.user });
    void reply.status(201);
    return { drills: orders.map((o) => drillView(entry(o.id))) };
  });

  app.get('/api/v1/drills', { preHandler: need('viewer') }, async (req) => {
    const q = parseInput(listQuery, req.query, 'query');
    return { drills: d.book.list(q.site, q.limit).map(drillView) };
  });

  app.get('/api/v1/drills/schedule', { preHandler: need('viewer') }, async (req) => {
    const q = parseInput(scheduleQuery, req.query, 'query');
    const schedule = d.scheduler.outlook().filter((o) => q.site === undefined || o.site === q.site).map((o) => {
      const last = d.book.latestFor(o.site, o.store);
      return { ...o, ...(last ? { last: drillView(last) } : {}) };
    });
    return { every: d.scheduler.every, schedule };
  });

  app.get('/api/v1/drills/:id', { preHandler: need('viewer') }, async (req) => drillView(entry(parseInput(idParams, req.params, 'path').id)));

  app.get('/api/v1/drills/:id/report.:format', { preHandler: need('viewer') }, async (req, reply) => {
    const p = parseInput(reportParams, req.params, 'path');
    const e = entry(p.id);
    if (!e.result) throw new MedvaultError(codes.NOT_FOUND, `drill ${p.id} has no result yet: its report is made when the agent reports`);
    const { bytes } = await renderDrillReport(e.result, d.key, p.format);
    void reply.type(contentTypes[p.format]).header('content-disposition', `inline; filename="drill-${p.id}.${p.format}"`);
    return reply.send(bytes);
  });
}
