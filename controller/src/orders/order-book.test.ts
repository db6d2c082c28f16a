import { describe, expect, it } from 'vitest';
import { generateSigningKey, makeOrder, type OrderStatus } from '@medvault/protocol';
import { orderView } from './order-book.js';

const order = makeOrder(
  { site: 'clinic-a', snapshot: 'latest', paths: [''], target: '/srv/restore', source: 'local', mode: 'new', requestedBy: { user: 'tess', mfa: true } },
  generateSigningKey(),
  1000,
);
const st = (state: OrderStatus['state'], at: number, extra: Partial<OrderStatus> = {}): OrderStatus => ({ type: 'mv.order-status.v1', orderId: order.id, site: 'clinic-a', state, at, ...extra });

describe('orderView', () => {
  it('is "sent" until the agent reports', () => {
    expect(orderView(order, [])).toMatchObject({ state: 'sent', final: false, history: [] });
  });

  it('never moves back from a later state, and keeps a final state', () => {
    expect(orderView(order, [st('running', 2), st('accepted', 1)]).state).toBe('running');
    const v = orderView(order, [st('accepted', 1), st('failed', 3, { reason: { code: 'MV_ERR_STORAGE_FAILED', message: 'disk full' } }), st('running', 2)]);
    expect(v).toMatchObject({ state: 'failed', final: true, reason: { message: 'disk full' } });
  });

  it('ignores statuses from another site', () => {
    expect(orderView(order, [{ ...st('done', 2), site: 'clinic-b' }]).state).toBe('sent');
  });
});
