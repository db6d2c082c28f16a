/**
 * The off-site projections rebuilt for a one-off CLI command (`offsite verify`, `offsite prune`):
 * the OffsiteIndex from MV_CONTROL and, with `retention`, the RetentionBook from MV_EVENTS too.
 */
import { streams } from '@medvault/protocol';
import type { Bus } from '../bus.js';
import { OffsiteIndex } from '../ingest/offsite-index.js';
import { OrderBook } from '../orders/order-book.js';
import { applyControl } from '../projections.js';
import { RetentionBook } from './retention.js';

export async function rebuildIndex(bus: Pick<Bus, 'tail'>, retention?: RetentionBook): Promise<OffsiteIndex> {
  const index = new OffsiteIndex();
  const book = new OrderBook();
  const tails = [await bus.tail(streams.control.name, (m) => void applyControl(m, { index, book, ...(retention ? { retention } : {}) }))];
  if (retention) tails.push(await bus.tail(streams.events.name, (m) => void retention.applyNeeds(m)));
  await Promise.all(tails.map((t) => t.caughtUp));
  await Promise.all(tails.map((t) => t.stop()));
  return index;
}
