import { describe, expect, it } from 'vitest';
import { ContinuousProtection } from './continuous.js';

describe('ContinuousProtection.pendingSince (the RPO exposure in heartbeats)', () => {
  it('is the oldest change no successful run started after', () => {
    let now = 1000;
    const cp = new ContinuousProtection({ stores: [], runner: { enqueue: () => {} }, alerts: { raise: () => {}, resolve: () => {} }, now: () => now });
    const change = (store: string) => (cp as unknown as { noteChange(s: string): void }).noteChange(store);
    expect(cp.pendingSince('records', undefined)).toBeUndefined();
    change('records');
    now = 1500;
    change('records'); // within a second: same entry
    now = 3000;
    change('records');
    expect(cp.pendingSince('records', undefined)).toBe(1000);
    expect(cp.pendingSince('records', 2000)).toBe(3000); // a run started at 2000 covers the first
    expect(cp.pendingSince('records', 3000)).toBeUndefined();
    expect(cp.pendingSince('other', 0)).toBeUndefined();
  });
});
