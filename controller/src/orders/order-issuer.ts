/**
 * Issues restore orders: makes the signed, site-bound, single-use, short-lived order (protocol
 * `makeOrder`), audits the use of the signing key, publishes it to mv.v1.ctl.<site>.order on
 * MV_CONTROL and records it in the book. The order is in the stream, and so the agent can see it,
 * when `issue` resolves. Nothing is published that could not be audited first.
 */
import { MedvaultError, codes, encode, makeOrder, newOrderId, subjects, type RestoreOrder, type SigningKey } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Bus } from '../bus.js';
import type { Log } from '../log.js';
import type { OrderBook } from './order-book.js';
import type { OrderRequestBody } from './order-request.js';

export const ORDER_LIFETIME_MS = 10 * 60_000;

export interface OrderIssuerDeps {
  bus: Pick<Bus, 'publish'>;
  book: OrderBook;
  key: SigningKey;
  clock: () => number;
  log: Log;
  /** Whether the site is known to this controller. */
  knownSite: (site: string) => boolean;
  audit?: AuditSink;
}

export interface IssueBy {
  user: string;
  /** Four-eyes: the second technician who approved. */
  approvedBy?: string;
  /** The order id to use (an approved request keeps its id). */
  id?: string;
  breakGlass?: boolean;
}

export class OrderIssuer {
  constructor(private readonly d: OrderIssuerDeps) {}

  /** Throws MV_ERR_NOT_FOUND for an unknown site, MV_ERR_TRANSPORT_FAILED if it cannot be published. */
  async issue(req: OrderRequestBody, by: IssueBy): Promise<RestoreOrder> {
    if (!this.d.knownSite(req.site)) {
      throw new MedvaultError(codes.NOT_FOUND, `site ${req.site} is unknown: no agent of that name has reported to this controller`);
    }
    const order = makeOrder(
      {
        site: req.site,
        snapshot: req.snapshot,
        ...(req.store !== undefined ? { store: req.store } : {}),
        paths: req.paths,
        target: req.target,
        source: req.source,
        mode: req.mode,
        // Every login requires a second factor, so every order comes from an MFA session.
        requestedBy: { user: by.user, mfa: true },
        ...(by.approvedBy !== undefined ? { approvedBy: { user: by.approvedBy, mfa: true } } : {}),
      },
      this.d.key,
      this.d.clock(),
      ORDER_LIFETIME_MS,
      by.id ?? newOrderId(),
    );
    const detail = {
      site: order.site, snapshot: order.snapshot, paths: order.paths.slice(0, 20).join('|').slice(0, 2000), target: order.target, mode: order.mode,
      source: order.source, kid: this.d.key.kid, expiresAt: order.expiresAt, approvedBy: by.approvedBy ?? null, breakGlass: by.breakGlass ?? false,
    };
    // Key use: the signing key made this order.
    await this.d.audit?.record({ actor: { kind: 'user', id: by.user }, action: 'order.issue', object: `order:${order.id}`, result: 'ok', detail });
    try {
      await this.d.bus.publish(subjects.control(order.site, 'order'), encode(order), { msgId: `order.${order.id}` });
    } catch (err) {
      await this.d.audit?.record({ actor: { kind: 'user', id: by.user }, action: 'order.publish', object: `order:${order.id}`, result: 'failed', detail: { error: (err as Error).message.slice(0, 500) } }).catch(() => undefined);
      throw err;
    }
    this.d.book.add(order);
    this.d.log.info({ orderId: order.id, site: order.site, user: by.user, approvedBy: by.approvedBy, snapshot: order.snapshot, paths: order.paths.length, target: order.target, mode: order.mode }, 'restore order issued');
    return order;
  }
}
