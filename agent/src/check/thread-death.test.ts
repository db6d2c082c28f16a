/**
 * check --read-data when the crypto pool's threads die mid-check (out of memory, a missing
 * pool-worker.js in a broken install): the check fails with the pool's error, and the packs read
 * ahead of it do not reject unhandled (that killed the process with a stack trace, no --json line).
 */
import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { backedUp } from '../restore/faults.test-support.js';
import { cryptoPool } from '../crypto/pool.js';
import { Checker } from './checker.js';

describe('check --read-data when the crypto threads die', () => {
  it('fails with the pool error; no pack read ahead rejects unhandled', async () => {
    const { t } = await backedUp({ 'a.bin': randomBytes(40 << 20), 'b.bin': randomBytes(40 << 20) });
    const unhandled: unknown[] = [];
    const note = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', note);
    try {
      const checking = new Checker(t.repo).check({ readData: true });
      checking.catch(() => undefined); // the check's own rejection may come before expect() below awaits it: not what is looked for
      const pool = cryptoPool() as unknown as { slots: { busy: number; worker: { terminate(): Promise<number> } }[] };
      // every thread dies once more than one pack is in flight
      const inFlight = () => pool.slots.reduce((n, s) => n + s.busy, 0);
      for (let i = 0; i < 5000 && inFlight() < 2; i++) await new Promise((r) => setTimeout(r, 1));
      expect(inFlight()).toBeGreaterThanOrEqual(2);
      await Promise.all(pool.slots.map((s) => s.worker.terminate()));
      await expect(checking).rejects.toThrow(/crypto thread/);
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', note);
    }
  });
});
