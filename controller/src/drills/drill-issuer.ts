/**
 * Issues drill orders: signed, site-bound, single-use, short-lived (protocol `makeDrillOrder`),
 * audited (key use) before they are published to `mv.v1.ctl.<site>.drill` on MV_CONTROL, then kept in
 * the book. One order per store: with no store named, every store the site's heartbeat lists.
 */
import { MedvaultError, codes, encode, makeDrillOrder, subjects, type DrillOrder, type DrillResult, type DrillSource, type SigningKey } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Bus } from '../bus.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { Log } from '../log.js';
import type { DrillBook } from './drill-book.js';

export const DRILL_ORDER_LIFETIME_MS = 10 * 60_000;

export interface DrillRequest {
  site: string;
  store?: string;
  sample: number;
  sources: DrillSource[];
  snapshot?: 'latest' | string;
}

export interface DrillIssuerDeps {
  bus: Pick<Bus, 'publish'>;
  book: DrillBook;
  fleet: Pick<FleetRegistry, 'site'>;
  key: SigningKey;
  clock: () => number;
  log: Log;
  audit?: AuditSink;
}

export class DrillIssuer {
  constructor(private readonly d: DrillIssuerDeps) {}

  /** The stores the site reported in its last heartbeat. */
  storesOf(site: string): string[] {
    return (this.d.fleet.site(site)?.heartbeat?.stores ?? []).map((s) => s.name);
  }

  /** MV_ERR_NOT_FOUND for an unknown site or store; MV_ERR_TRANSPORT_FAILED when it cannot be published. */
  async issue(req: DrillRequest, by: DrillResult['requestedBy']): Promise<DrillOrder[]> {
    if (!this.d.fleet.site(req.site)) throw new MedvaultError(codes.NOT_FOUND, `site ${req.site} is unknown: no agent of that name has reported to this controller`);
    const known = this.storesOf(req.site);
    if (req.store !== undefined && known.length > 0 && !known.includes(req.store)) throw new MedvaultError(codes.NOT_FOUND, `site ${req.site} has no store ${req.store} (it reports ${known.join(', ')})`);
    const stores = req.store !== undefined ? [req.store] : known;
    if (stores.length === 0) throw new MedvaultError(codes.NOT_FOUND, `site ${req.site} has reported no record store yet: name one with store`);
    const out: DrillOrder[] = [];
    for (const store of stores) {
      const order = makeDrillOrder({ site: req.site, store, snapshot: req.snapshot ?? 'latest', sample: req.sample, sources: req.sources, requestedBy: by }, this.d.key, this.d.clock(), DRILL_ORDER_LIFETIME_MS);
      await this.d.audit?.record({
        actor: { kind: by.kind, id: by.id }, action: 'drill.issue', object: `drill:${order.id}`, result: 'ok',
        detail: { site: order.site, store, snapshot: order.snapshot, sample: order.sample, sources: order.sources.join(','), kid: this.d.key.kid, expiresAt: order.expiresAt },
      });
      await this.d.bus.publish(subjects.control(order.site, 'drill'), encode(order), { msgId: `drill.${order.id}` });
      this.d.book.addOrder(order);
      this.d.log.info({ drillId: order.id, site: order.site, store, by: by.id, sample: order.sample, sources: order.sources }, 'drill order issued');
      out.push(order);
    }
    return out;
  }
}
