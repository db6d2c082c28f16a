/**
 * orders/: restore orders raised by technicians: validated, signed, published to
 * mv.v1.ctl.<site>.order, and followed through the agent's mv.order-status.v1 events.
 *
 * The OrderBook is the projection of orders on MV_CONTROL; `orderView` is the pure function that
 * combines an order with its status events into what the API shows.
 */
import { orderStates, type OrderState, type OrderStatus, type RestoreOrder } from '@medvault/protocol';

export const MAX_ORDERS = 100_000;

export class OrderBook {
  private readonly orders = new Map<string, RestoreOrder>();

  add(o: RestoreOrder): void {
    if (this.orders.has(o.id)) return;
    this.orders.set(o.id, o);
    if (this.orders.size > MAX_ORDERS) this.orders.delete(this.orders.keys().next().value!);
  }

  get(id: string): RestoreOrder | undefined {
    return this.orders.get(id);
  }
}

/** 'sent': published, nothing heard back yet. */
export type OrderViewState = OrderState | 'sent';

export interface OrderView {
  order: RestoreOrder;
  state: OrderViewState;
  updatedAt: number;
  final: boolean;
  reason?: OrderStatus['reason'];
  progress?: OrderStatus['progress'];
  result?: OrderStatus['result'];
  history: Array<Pick<OrderStatus, 'state' | 'at' | 'reason'>>;
}

const finalStates: readonly OrderState[] = ['refused', 'done', 'failed'];
const rank = (s: OrderState) => orderStates.indexOf(s);

/**
 * The state of an order from its statuses. Statuses for another site are ignored. A final state
 * (refused, done, failed) once seen is kept; otherwise the furthest state along
 * accepted → running → verifying wins, so a late or reordered event never moves an order back.
 */
export function orderView(order: RestoreOrder, statuses: readonly OrderStatus[]): OrderView {
  const mine = statuses.filter((s) => s.site === order.site && s.orderId === order.id);
  let best: OrderStatus | undefined;
  let progress: OrderStatus['progress'];
  for (const s of mine) {
    if (s.progress) progress = s.progress;
    if (!best) best = s;
    else if (finalStates.includes(best.state)) continue;
    else if (finalStates.includes(s.state) || rank(s.state) >= rank(best.state)) best = s;
  }
  return {
    order,
    state: best?.state ?? 'sent',
    updatedAt: best?.at ?? order.issuedAt,
    final: best !== undefined && finalStates.includes(best.state),
    ...(best?.reason ? { reason: best.reason } : {}),
    ...(progress ? { progress } : {}),
    ...(best?.result ? { result: best.result } : {}),
    history: mine.map((s) => ({ state: s.state, at: s.at, ...(s.reason ? { reason: s.reason } : {}) })),
  };
}
