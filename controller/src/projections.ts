/**
 * The controller's local state, rebuilt from JetStream (the system of record) at every start and
 * kept current by following the streams: MV_CONTROL → receipts and resend requests (OffsiteIndex) and orders
 * (OrderBook), pruned records (OffsiteIndex, RetentionBook); MV_EVENTS → FleetRegistry (whose
 * listeners feed the DrillBook and the RetentionBook's needs lists, decoded once, in app.ts). Invalid
 * messages are dropped and logged, never fatal.
 */
import { decode, streams } from '@medvault/protocol';
import type { Bus, StoredMessage, Tail } from './bus.js';
import type { Log } from './log.js';
import type { FleetRegistry } from './fleet/registry.js';
import type { OffsiteIndex } from './ingest/offsite-index.js';
import type { OrderBook } from './orders/order-book.js';
import type { DrillBook } from './drills/drill-book.js';
import type { RetentionBook } from './offsite/retention.js';

export interface Projections {
  index: OffsiteIndex;
  book: OrderBook;
  fleet: FleetRegistry;
  /** Drill orders issued (the results come in on MV_EVENTS through the fleet registry). */
  drills?: DrillBook;
  /** Snapshot needs lists and pruned objects (off-site retention). */
  retention?: RetentionBook;
}

const CONTROL_RE = /^mv\.v1\.ctl\.([a-z0-9][a-z0-9-]{0,62})\.(receipt|order|resend|reconcile|drill|pruned)$/;

/** Applies one MV_CONTROL message; returns why it was dropped, or undefined. */
export function applyControl(m: StoredMessage, p: Pick<Projections, 'index' | 'book' | 'drills' | 'retention'>): string | undefined {
  const s = CONTROL_RE.exec(m.subject);
  if (!s) return `not a control subject: ${m.subject}`;
  try {
    if (s[2] === 'receipt') {
      const r = decode(m.data, 'mv.receipt.v1');
      if (r.site !== s[1]) return `receipt for site ${r.site} on ${m.subject}`;
      p.index.add(r);
      p.retention?.receipted(r);
    } else if (s[2] === 'pruned') {
      // Deleted under off-site retention: no longer off site, and not to be taken for missing.
      const r = decode(m.data, 'mv.pruned.v1');
      if (r.site !== s[1]) return `pruned record for site ${r.site} on ${m.subject}`;
      for (const o of r.objects) p.index.remove({ site: r.site, repo: r.repo, ...o });
      p.retention?.applyPruned(r);
    } else if (s[2] === 'resend') {
      // The scrub purged these copies: flagged until their next receipt (see OffsiteIndex).
      const r = decode(m.data, 'mv.resend.v1');
      if (r.site !== s[1]) return `resend request for site ${r.site} on ${m.subject}`;
      for (const o of r.objects) p.index.markDamaged({ site: r.site, repo: r.repo, kind: o.kind, hash: o.hash, problem: r.reason, at: r.at, request: r.id });
    } else if (s[2] === 'reconcile') {
      return undefined; // for the agent only
    } else if (s[2] === 'drill') {
      const o = decode(m.data, 'mv.drill-order.v1');
      if (o.site !== s[1]) return `drill order for site ${o.site} on ${m.subject}`;
      p.drills?.addOrder(o);
    } else {
      const o = decode(m.data, 'mv.restore-order.v1');
      if (o.site !== s[1]) return `order for site ${o.site} on ${m.subject}`;
      p.book.add(o);
    }
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** Follows MV_CONTROL and MV_EVENTS; resolves once both have caught up with what they held. */
export async function followStreams(bus: Pick<Bus, 'tail'>, p: Projections, log: Log): Promise<Tail[]> {
  const control = await bus.tail(streams.control.name, (m) => {
    const why = applyControl(m, p);
    if (why) log.warn({ subject: m.subject, seq: m.seq, reason: why }, 'control message dropped');
  });
  const events = await bus.tail(streams.events.name, (m) => {
    const why = p.fleet.apply(m);
    if (why) log.warn({ subject: m.subject, seq: m.seq, reason: why }, 'event dropped');
  });
  await Promise.all([control.caughtUp, events.caughtUp]);
  return [control, events];
}
