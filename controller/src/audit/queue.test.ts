/** queueAudit: entries queued by offline commands survive a command killed mid-append before them. */
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pendingFile, queueAudit } from './trail.js';

describe('queued audit entries', () => {
  it('a line torn by a killed command does not swallow the entries queued after it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-audit-queue-'));
    const entry = (n: number) => ({ at: n, actor: { kind: 'user' as const, id: 'it-admin' }, action: 'site.enrol', object: `site:clinic-${n}`, result: 'ok' as const });
    queueAudit(dir, entry(1));
    appendFileSync(pendingFile(dir), '{"at":2,"actor":{"kind":"us'); // the command died here
    queueAudit(dir, entry(3));
    queueAudit(dir, entry(4));
    const lines = readFileSync(pendingFile(dir), 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    const readable = lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as { at: number }];
      } catch {
        return [];
      }
    });
    expect(readable.map((e) => e.at)).toEqual([1, 3, 4]);
  });
});
