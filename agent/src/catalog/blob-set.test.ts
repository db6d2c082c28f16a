import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BlobIdSet } from './blob-set.js';

describe('BlobIdSet', () => {
  it('holds every id added (through many grows) and none that was not', () => {
    const s = new BlobIdSet();
    const ids = Array.from({ length: 50_000 }, () => randomBytes(32).toString('hex'));
    for (const id of ids) s.add(id);
    for (const id of ids) s.add(id); // twice: counted once
    expect(s.size).toBe(ids.length);
    expect(ids.every((id) => s.has(id))).toBe(true);
    const others = Array.from({ length: 50_000 }, () => randomBytes(32).toString('hex'));
    expect(others.filter((id) => s.has(id))).toEqual([]);
  });

  it('keeps an id whose 128-bit prefix is zero (the free-slot mark) aside', () => {
    const s = new BlobIdSet();
    const zero = '0'.repeat(32) + 'ab'.repeat(16);
    expect(s.has(zero)).toBe(false);
    s.add(zero);
    expect(s.has(zero)).toBe(true);
    expect(s.size).toBe(1);
  });
});
