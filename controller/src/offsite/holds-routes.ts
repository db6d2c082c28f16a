/**
 * Legal holds over the HTTP API (on the API's app and role guard; sessions are MFA logins):
 *
 * | route                      | role       |
 * |----------------------------|------------|
 * | GET  /api/v1/holds[?site=] | viewer: holds in force (`all=1`: lifted ones too) |
 * | POST /api/v1/holds         | technician: {site, snapshot, reason}; snapshot by id or a prefix of ≥ 8 |
 * | POST /api/v1/holds/remove  | technician: {site, snapshot, reason} |
 *
 * Both changes are audited (HoldBook) with the person's id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MedvaultError, codes, site as siteSchema } from '@medvault/protocol';
import type { Role } from '../auth/roles.js';
import type { FleetRegistry } from '../fleet/registry.js';
import { parseInput } from '../http/validate.js';
import type { HoldBook } from './holds.js';
import type { RetentionBook } from './retention.js';

const body = z.strictObject({
  site: siteSchema,
  snapshot: z.string().regex(/^[0-9a-f]{8,64}$/, 'a snapshot id or a prefix of at least 8 hex characters'),
  reason: z.string().trim().min(3, 'say why (a case or ticket number)').max(1000),
});
const listQuery = z.strictObject({ site: siteSchema.optional(), all: z.enum(['0', '1']).optional() });

/** The one snapshot of `site` whose id starts with `prefix`, from the needs lists and snapshot events. */
export function resolveSnapshot(site: string, prefix: string, retention: Pick<RetentionBook, 'snapshots'>, fleet: Pick<FleetRegistry, 'snapshots'>): string {
  const ids = new Set([...retention.snapshots(site).map((s) => s.snapshot), ...fleet.snapshots(site).map((s) => s.id)].filter((id) => id.startsWith(prefix)));
  if (ids.size === 0) throw new MedvaultError(codes.NOT_FOUND, `site ${site} has reported no snapshot ${prefix}`);
  if (ids.size > 1) throw new MedvaultError(codes.CONFLICT, `snapshot prefix ${prefix} matches ${ids.size} snapshots of site ${site}; give more characters`);
  return [...ids][0]!;
}

export function registerHoldRoutes(
  app: FastifyInstance,
  need: (role: Role) => (req: FastifyRequest) => Promise<void>,
  d: { holds: HoldBook; retention: RetentionBook; fleet: FleetRegistry },
): void {
  app.get('/api/v1/holds', { preHandler: need('viewer') }, async (req) => {
    const q = parseInput(listQuery, req.query, 'query');
    return { holds: await d.holds.list(q.site, q.all === '1') };
  });

  app.post('/api/v1/holds', { preHandler: need('technician') }, async (req, reply) => {
    const b = parseInput(body, req.body, 'hold');
    const snapshot = resolveSnapshot(b.site, b.snapshot, d.retention, d.fleet);
    const h = await d.holds.add(b.site, snapshot, b.reason, { kind: 'user', id: req.mvSession!.user });
    void reply.status(201);
    return h;
  });

  app.post('/api/v1/holds/remove', { preHandler: need('technician') }, async (req) => {
    const b = parseInput(body, req.body, 'hold');
    const snapshot = b.snapshot.length === 64 ? b.snapshot : resolveSnapshot(b.site, b.snapshot, d.retention, d.fleet);
    return d.holds.remove(b.site, snapshot, b.reason, { kind: 'user', id: req.mvSession!.user });
  });
}
