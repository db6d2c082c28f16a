/**
 * HTTP routes of the backup log, incidents and compliance reports (added to the API by app.ts):
 *
 * | route                                   | role       |
 * |-----------------------------------------|------------|
 * | GET  /api/v1/log?site&store&type&person&result&since&until&format=json\|csv | viewer |
 * | POST /api/v1/log/reviews {from,to,note[,site]}, GET /api/v1/log/reviews      | technician / viewer |
 * | GET  /api/v1/incidents, /incidents/:id, /incidents/:id/report?format=pdf\|html\|json | viewer |
 * | POST /api/v1/incidents {alert \| title+scope}, /:id/orders {order}, /:id/notes {text}, /:id/close {resolution} | technician |
 * | GET  /api/v1/reports/compliance?from&to&format=pdf\|html\|json | viewer |
 *
 * Exports (CSV, reports) are audited with the person's id.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MedvaultError, codes, type SigningKey } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Role } from '../auth/roles.js';
import { complianceReport, gatherEvidence, type EvidenceDeps } from '../compliance/compliance.js';
import type { FleetRegistry } from '../fleet/registry.js';
import { parseInput } from '../http/validate.js';
import type { IncidentDesk } from '../incidents/incidents.js';
import { listReviews, logCsv, logQuery, recordReview, searchLog, type LogBus } from '../logs/backup-log.js';
import { renderReport, reportFormats, signReport, type ReportInput } from './render.js';

export interface RecordRoutesDeps {
  bus: LogBus & EvidenceDeps['bus'];
  fleet: Pick<FleetRegistry, 'sites' | 'snapshots'>;
  incidents: IncidentDesk;
  evidence: Omit<EvidenceDeps, 'bus' | 'fleet' | 'incidents'>;
  audit: AuditSink;
  key: SigningKey;
  clock: () => number;
}

type Need = (role: Role) => (req: FastifyRequest) => Promise<void>;
const idParams = z.strictObject({ id: z.string().uuid('an incident id (UUID)') });
const formatQuery = z.strictObject({ format: z.enum(reportFormats).default('pdf') });
const contentType = { json: 'application/json', html: 'text/html; charset=utf-8', pdf: 'application/pdf', csv: 'text/csv; charset=utf-8' } as const;
const when = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform(Date.parse), z.iso.date().transform((s) => Date.parse(`${s}T00:00:00Z`))]);
const periodQuery = z.strictObject({ from: when, to: when, format: z.enum(reportFormats).default('pdf') }).refine((p) => p.from < p.to, 'from must be before to');

export function registerRecordRoutes(app: FastifyInstance, need: Need, d: RecordRoutesDeps): void {
  const user = (req: FastifyRequest) => req.mvSession!.user;
  const sites = () => d.fleet.sites().map((s) => s.site);
  const send = async (reply: FastifyReply, req: FastifyRequest, input: ReportInput, format: (typeof reportFormats)[number], name: string) => {
    const r = signReport(input, d.key);
    await d.audit.record({ actor: { kind: 'user', id: user(req) }, action: 'report.export', object: `report:${input.kind}:${input.subjects[0] ?? 'all'}`.slice(0, 1000), result: 'ok', detail: { format, kid: r.sig!.kid } });
    void reply.header('content-type', contentType[format]).header('content-disposition', `attachment; filename="${name}.${format}"`);
    return reply.send(await renderReport(r, format));
  };

  app.get('/api/v1/log', { preHandler: need('viewer') }, async (req, reply) => {
    const { format = 'json', ...rest } = req.query as Record<string, unknown>;
    if (format !== 'json' && format !== 'csv') throw new MedvaultError(codes.MESSAGE_INVALID, `query: format: json or csv, not ${String(format)}`);
    const q = parseInput(logQuery, rest, 'query');
    const entries = await searchLog(d.bus, sites(), q);
    await d.audit.record({ actor: { kind: 'user', id: user(req) }, action: 'log.export', object: `backup-log:${q.site ?? 'all'}`, result: 'ok', detail: { format, entries: entries.length, query: JSON.stringify(q).slice(0, 500) } });
    if (format === 'json') return { entries };
    void reply.header('content-type', contentType.csv).header('content-disposition', 'attachment; filename="backup-log.csv"');
    return reply.send(logCsv(entries));
  });

  app.post('/api/v1/log/reviews', { preHandler: need('technician') }, async (req) =>
    recordReview({ bus: d.bus, audit: d.audit, sites: sites() }, user(req), req.body as never));
  app.get('/api/v1/log/reviews', { preHandler: need('viewer') }, async () => ({ reviews: await listReviews(d.bus) }));

  app.get('/api/v1/incidents', { preHandler: need('viewer') }, async () => ({ incidents: await d.incidents.list() }));
  app.post('/api/v1/incidents', { preHandler: need('technician') }, async (req, reply) => {
    void reply.status(201);
    return d.incidents.open((req.body ?? {}) as never, user(req));
  });
  app.get('/api/v1/incidents/:id', { preHandler: need('viewer') }, async (req) => d.incidents.show(parseInput(idParams, req.params, 'path').id));
  app.post('/api/v1/incidents/:id/orders', { preHandler: need('technician') }, async (req) =>
    d.incidents.attach(parseInput(idParams, req.params, 'path').id, parseInput(z.strictObject({ order: z.string() }), req.body, 'attach').order, user(req)));
  app.post('/api/v1/incidents/:id/notes', { preHandler: need('technician') }, async (req) =>
    d.incidents.note(parseInput(idParams, req.params, 'path').id, parseInput(z.strictObject({ text: z.string() }), req.body, 'note').text, user(req)));
  app.post('/api/v1/incidents/:id/close', { preHandler: need('technician') }, async (req) =>
    d.incidents.close(parseInput(idParams, req.params, 'path').id, parseInput(z.strictObject({ resolution: z.string() }), req.body, 'close').resolution, user(req)));
  app.get('/api/v1/incidents/:id/report', { preHandler: need('viewer') }, async (req, reply) => {
    const { id } = parseInput(idParams, req.params, 'path');
    const { format } = parseInput(formatQuery, req.query, 'query');
    return send(reply, req, await d.incidents.report(id, user(req)), format, `incident-${id}`);
  });

  app.get('/api/v1/reports/compliance', { preHandler: need('viewer') }, async (req, reply) => {
    const { from, to, format } = parseInput(periodQuery, req.query, 'query');
    const evidence = await gatherEvidence({ ...d.evidence, bus: d.bus, fleet: d.fleet, incidents: () => d.incidents.list() }, { from, to }, user(req), d.clock());
    return send(reply, req, complianceReport(evidence), format, `compliance-${new Date(from).toISOString().slice(0, 10)}-${new Date(to).toISOString().slice(0, 10)}`);
  });
}
