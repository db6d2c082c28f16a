/**
 * Making and checking restore and drill orders. `checkOrder` is pure: given the order, what the agent pinned,
 * the orders it has already seen and `now`, it says whether to act and, if not, exactly why.
 * An agent MUST call it, and record the order id as used, before it touches a single file.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { MedvaultError, codes, type ErrorCode } from './errors.js';
import { newOrderId } from './ids.js';
import type { DrillOrder, RestoreOrder } from './messages.js';
import { signMessage, verifyMessage, type SigningKey } from './sign.js';
import { validate } from './decode.js';

/** Why paths given for a restore (an order's, or the CLI's --path) are unsafe inside the snapshot ('..', '.', NUL, absolute), or undefined. */
export function unsafeSnapshotPath(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    if (p.includes('\0')) return `path ${JSON.stringify(p)} contains NUL`;
    if (p.startsWith('/')) return `path ${JSON.stringify(p)} is absolute; paths are inside the snapshot`;
    if (p.split('/').some((s) => s === '..' || s === '.')) return `path ${JSON.stringify(p)} has a '.' or '..' segment`;
  }
  return undefined;
}

/** Longest an order may live from issue to expiry. */
export const MAX_ORDER_LIFETIME_MS = 15 * 60_000;
/** How far the agent's clock may be from the controller's before an order is refused. */
export const CLOCK_TOLERANCE_MS = 2 * 60_000;

export type OrderRequest = Omit<RestoreOrder, 'type' | 'id' | 'issuedAt' | 'expiresAt' | 'nonce' | 'sig'>;

/** A signed, site-bound, single-use order valid from `now` for `lifetimeMs` (id: a fresh UUID unless given). */
export function makeOrder(request: OrderRequest, key: SigningKey, now: number, lifetimeMs = 10 * 60_000, id: string = newOrderId()): RestoreOrder {
  const order: RestoreOrder = validate(
    {
      type: 'mv.restore-order.v1',
      id,
      ...request,
      issuedAt: now,
      expiresAt: now + Math.min(lifetimeMs, MAX_ORDER_LIFETIME_MS),
      nonce: randomBytes(16).toString('base64url'),
    },
    'mv.restore-order.v1',
  );
  return signMessage(order, key);
}

export type DrillRequest = Omit<DrillOrder, 'type' | 'id' | 'issuedAt' | 'expiresAt' | 'nonce' | 'sig'>;

/** A signed drill order, valid like a restore order (same lifetime rules, checked by checkOrder). */
export function makeDrillOrder(request: DrillRequest, key: SigningKey, now: number, lifetimeMs = 10 * 60_000, id: string = newOrderId()): DrillOrder {
  const order: DrillOrder = validate(
    { type: 'mv.drill-order.v1', id, ...request, issuedAt: now, expiresAt: now + Math.min(lifetimeMs, MAX_ORDER_LIFETIME_MS), nonce: randomBytes(16).toString('base64url') },
    'mv.drill-order.v1',
  );
  return signMessage(order, key);
}

type OrderType = 'mv.restore-order.v1' | 'mv.drill-order.v1';
type OrderOf<T extends OrderType> = T extends 'mv.drill-order.v1' ? DrillOrder : RestoreOrder;

export type OrderVerdict<O = RestoreOrder> = { ok: true; order: O } | { ok: false; code: ErrorCode; reason: string };

/**
 * 1. the value is a well-formed order of `type` (default mv.restore-order.v1);  2. its signature verifies with the pinned key;
 * 3. it is for this site;  4. its lifetime is at most MAX_ORDER_LIFETIME_MS;  5. now lies within
 * [issuedAt - tolerance, expiresAt + tolerance];  6. its id has not been seen before;  7. it was not
 * issued before `notBefore`, the time this agent's order ledger began (a replaced appliance, or one
 * whose state was lost, cannot know which older orders its predecessor already carried out).
 */
export function checkOrder<T extends OrderType = 'mv.restore-order.v1'>(
  value: unknown,
  ctx: { site: string; controllerKey: KeyObject; now: number; seen: (id: string) => boolean; notBefore?: number },
  type: T = 'mv.restore-order.v1' as T,
): OrderVerdict<OrderOf<T>> {
  let order: OrderOf<T>;
  try {
    order = validate(value, type) as OrderOf<T>;
    verifyMessage(order, ctx.controllerKey);
  } catch (err) {
    if (err instanceof MedvaultError) return { ok: false, code: err.code, reason: err.message };
    throw err;
  }
  const refuse = (code: ErrorCode, reason: string): OrderVerdict<OrderOf<T>> => ({ ok: false, code, reason: `order ${order.id}: ${reason}` });
  if (order.site !== ctx.site) return refuse(codes.ORDER_SITE, `is for site ${order.site}, this is site ${ctx.site}`);
  if (order.expiresAt <= order.issuedAt || order.expiresAt - order.issuedAt > MAX_ORDER_LIFETIME_MS) {
    return refuse(codes.ORDER_LIFETIME, `lifetime of ${order.expiresAt - order.issuedAt} ms is not within (0, ${MAX_ORDER_LIFETIME_MS}] ms`);
  }
  if (ctx.now > order.expiresAt + CLOCK_TOLERANCE_MS) {
    return refuse(codes.ORDER_EXPIRED, `expired at ${new Date(order.expiresAt).toISOString()} (now ${new Date(ctx.now).toISOString()})`);
  }
  if (ctx.now < order.issuedAt - CLOCK_TOLERANCE_MS) {
    return refuse(codes.ORDER_NOT_YET_VALID, `issued at ${new Date(order.issuedAt).toISOString()}, in the future (now ${new Date(ctx.now).toISOString()})`);
  }
  if (ctx.seen(order.id)) return refuse(codes.ORDER_REPLAYED, 'was already used: orders are single-use');
  if (ctx.notBefore !== undefined && order.issuedAt < ctx.notBefore) {
    return refuse(
      codes.ORDER_REPLAYED,
      `was issued at ${new Date(order.issuedAt).toISOString()}, before this appliance's order ledger began at ${new Date(ctx.notBefore).toISOString()} (a replaced or reset appliance cannot tell whether it already ran); ask for a new order`,
    );
  }
  return { ok: true, order };
}
