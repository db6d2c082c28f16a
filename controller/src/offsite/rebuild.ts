/** The OffsiteIndex rebuilt from MV_CONTROL for a one-off CLI command (`offsite verify`, `offsite prune`). */
import { streams } from '@medvault/protocol';
import type { Bus } from '../bus.js';
import { OffsiteIndex } from '../ingest/offsite-index.js';
import { OrderBook } from '../orders/order-book.js';
import { applyControl } from '../projections.js';

export async function rebuildIndex(bus: Pick<Bus, 'tail'>): Promise<OffsiteIndex> {
  const index = new OffsiteIndex();
  const book = new OrderBook();
  const tail = await bus.tail(streams.control.name, (m) => void applyControl(m, { index, book }));
  await tail.caughtUp;
  await tail.stop();
  return index;
}
