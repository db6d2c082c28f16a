/**
 * Four-eyes approval of restores that overwrite data in place (when `orders.four_eyes_overwrite`
 * is on): the request waits, unsigned, in the JetStream KV bucket MV_APPROVALS until a second,
 * different technician approves it; only then is the order signed and published (with both names
 * in it). A request expires after `ttlMs`; it can be rejected. Every step is audited.
 *
 * States: awaiting-approval → approved (→ the order exists) | rejected | expired (derived from time).
 * The approve step is a compare-and-set, so two approvers racing produce one order.
 */
import { z } from 'zod';
import { MedvaultError, codes } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { KvBucket } from '../bus.js';
import type { OrderIssuer } from './order-issuer.js';
import { orderRequestSchema, type OrderRequestBody } from './order-request.js';

export const APPROVALS_BUCKET = 'MV_APPROVALS';
export const APPROVAL_TTL_MS = 60 * 60_000;

const pendingSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().uuid(),
  request: orderRequestSchema,
  requestedBy: z.string().max(200),
  requestedAt: z.number().int(),
  expiresAt: z.number().int(),
  state: z.enum(['awaiting-approval', 'approved', 'rejected']),
  decidedBy: z.string().max(200).optional(),
  decidedAt: z.number().int().optional(),
  /** Why it was rejected (shown to the requester). */
  reason: z.string().max(500).optional(),
});
export type PendingOrder = z.infer<typeof pendingSchema>;

export type PendingState = PendingOrder['state'] | 'expired';

export function pendingState(p: PendingOrder, now: number): PendingState {
  return p.state === 'awaiting-approval' && now >= p.expiresAt ? 'expired' : p.state;
}

const bytes = (p: PendingOrder) => new TextEncoder().encode(JSON.stringify(p));

export class Approvals {
  constructor(
    private readonly d: {
      kv: KvBucket;
      issuer: Pick<OrderIssuer, 'issue'>;
      clock: () => number;
      audit?: AuditSink;
      ttlMs?: number;
    },
  ) {}

  async get(id: string): Promise<{ pending: PendingOrder; revision: number } | undefined> {
    const e = await this.d.kv.get(id);
    if (!e) return undefined;
    const p = pendingSchema.safeParse(JSON.parse(new TextDecoder().decode(e.value)));
    if (!p.success) throw new MedvaultError(codes.MESSAGE_INVALID, `${APPROVALS_BUCKET}/${id}: invalid`);
    return { pending: p.data, revision: e.revision };
  }

  async request(req: OrderRequestBody, by: string, id: string): Promise<PendingOrder> {
    const now = this.d.clock();
    const p: PendingOrder = { v: 1, id, request: req, requestedBy: by, requestedAt: now, expiresAt: now + (this.d.ttlMs ?? APPROVAL_TTL_MS), state: 'awaiting-approval' };
    await this.d.audit?.record({ actor: { kind: 'user', id: by }, action: 'order.request', object: `order:${id}`, result: 'ok', detail: { site: req.site, mode: req.mode, target: req.target, paths: req.paths.slice(0, 20).join('|').slice(0, 2000), fourEyes: true } });
    await this.d.kv.create(id, bytes(p));
    return p;
  }

  /** The second technician approves: signs and publishes the order. Refuses the requester themself. */
  async approve(id: string, by: string, opts: { breakGlass?: boolean } = {}) {
    const e = await this.get(id);
    if (!e) throw new MedvaultError(codes.NOT_FOUND, `no order ${id} awaits approval`);
    const { pending, revision } = e;
    const state = pendingState(pending, this.d.clock());
    const refuse = async (code: typeof codes.AUTH_FORBIDDEN | typeof codes.CONFLICT, why: string) => {
      await this.d.audit?.record({ actor: { kind: 'user', id: by }, action: 'order.approve', object: `order:${id}`, result: 'refused', detail: { reason: why } });
      throw new MedvaultError(code, `order ${id}: ${why}`);
    };
    if (pending.requestedBy === by) return refuse(codes.AUTH_FORBIDDEN, 'four-eyes: a second, different technician must approve it');
    if (state !== 'awaiting-approval' && !(state === 'approved' && pending.decidedBy === by)) return refuse(codes.CONFLICT, `is ${state}, not awaiting approval`);
    const now = this.d.clock();
    if (state === 'awaiting-approval') {
      await this.d.kv.update(id, bytes({ ...pending, state: 'approved', decidedBy: by, decidedAt: now }), revision);
      await this.d.audit?.record({ actor: { kind: 'user', id: by }, action: 'order.approve', object: `order:${id}`, result: 'ok', detail: { requestedBy: pending.requestedBy, site: pending.request.site, breakGlass: opts.breakGlass ?? false } });
    }
    // Published with the same id; a retry after a failed publish is deduplicated by the message id.
    return this.d.issuer.issue(pending.request, { user: pending.requestedBy, approvedBy: by, id, ...(opts.breakGlass ? { breakGlass: true } : {}) });
  }

  async reject(id: string, by: string, reason: string): Promise<PendingOrder> {
    const e = await this.get(id);
    if (!e) throw new MedvaultError(codes.NOT_FOUND, `no order ${id} awaits approval`);
    if (pendingState(e.pending, this.d.clock()) !== 'awaiting-approval') throw new MedvaultError(codes.CONFLICT, `order ${id} is ${pendingState(e.pending, this.d.clock())}`);
    const next: PendingOrder = { ...e.pending, state: 'rejected', decidedBy: by, decidedAt: this.d.clock(), reason: reason.slice(0, 500) };
    await this.d.kv.update(id, bytes(next), e.revision);
    await this.d.audit?.record({ actor: { kind: 'user', id: by }, action: 'order.reject', object: `order:${id}`, result: 'ok', detail: { reason: reason.slice(0, 500), requestedBy: e.pending.requestedBy } });
    return next;
  }
}
