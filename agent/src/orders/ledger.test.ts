/** The order ledger: an accepted order reads back after a restart exactly as it was recorded. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../repo/testing.js';
import { OrderLedger } from './ledger.js';

describe('order ledger', () => {
  it('replays each accepted order as record() kept it, empty fields left out', async () => {
    const dir = join(await tempDir('mv-ledger-'), 'state');
    const ledger = OrderLedger.open(dir, undefined, 1_000);
    ledger.record('a', 1, 2_000, { by: 'tech', store: 'records', plan: { sample: 0.1 } });
    ledger.record('b', 2, 3_000, { by: '', store: '' });
    ledger.record('c', 3, 4_000, { plan: null });
    const before = ['a', 'b', 'c'].map((id) => ledger.acceptedOrder(id));
    ledger.close();
    const reopened = OrderLedger.open(dir, undefined, 9_000);
    expect(['a', 'b', 'c'].map((id) => reopened.acceptedOrder(id))).toEqual(before);
    expect(before).toEqual([
      { id: 'a', seq: 1, at: 2_000, by: 'tech', store: 'records', plan: { sample: 0.1 } },
      { id: 'b', seq: 2, at: 3_000 },
      { id: 'c', seq: 3, at: 4_000, plan: null },
    ]);
    expect(reopened.unfinished()).toEqual(['a', 'b', 'c']);
    reopened.close();
  });
});
