import { describe, expect, it } from 'vitest';
import { assess, entropy, type ChangeStats } from './ransomware.js';

const base: ChangeStats = { before: 1000, after: 1000, changed: 0, added: 0, deleted: 0, renamed: 0, sampled: 0, turnedRandom: 0 };

describe('assess (golden cases)', () => {
  const cases: [string, Partial<ChangeStats>, boolean, RegExp?][] = [
    ['a normal day: a few files change', { changed: 30, added: 10 }, false],
    ['a new month of DICOM images arrives: many added, nothing changed', { added: 900, after: 1900 }, false],
    ['every file rewritten', { changed: 1000 }, true, /1000 of 1000 files \(100%\) changed/],
    ['renamed to a new extension', { deleted: 400, added: 400, renamed: 400 }, true, /renamed to new extensions/],
    ['contents turned random, sizes kept', { changed: 300, sampled: 200, turnedRandom: 150 }, true, /high-entropy/],
    ['mass deletion (or an empty mount point)', { deleted: 800, after: 200 }, true, /disappeared/],
    ['a tiny store is not judged', { before: 5, changed: 5 }, false],
  ];
  for (const [name, over, suspect, reason] of cases) {
    it(name, () => {
      const v = assess({ ...base, ...over });
      expect(v.suspect).toBe(suspect);
      if (reason) expect(v.reasons.join('; ')).toMatch(reason);
    });
  }
});

describe('entropy', () => {
  it('is low for text and near 8 for random bytes', () => {
    expect(entropy(Buffer.from('{"resourceType":"Patient","name":[{"family":"Hodkiewicz"}]}'.repeat(100)))).toBeLessThan(5);
    expect(entropy(Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 2654435761) >>> 24)))).toBeGreaterThan(7.9);
  });
});
