import { appendFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal, writeFileAtomic, readFileIfExists } from './journal.js';
import { Spool } from '../replicate/spool.js';
import { MemLink } from '../replicate/mem-link.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mv-journal-'));

describe('Journal', () => {
  it('keeps appended records across reopen and drops a torn last line', () => {
    const file = join(tmp(), 'j.jsonl');
    const j = Journal.open<{ n: number }>(file);
    j.append({ n: 1 }, { n: 2 });
    j.close();
    appendFileSync(file, '{"n":3');
    const again = Journal.open<{ n: number }>(file);
    expect(again.records).toEqual([{ n: 1 }, { n: 2 }]);
    again.append({ n: 4 });
    expect(readFileSync(file, 'utf8')).toBe('{"n":1}\n{"n":2}\n{"n":4}\n');
  });

  it('names the file when a middle line is corrupt', () => {
    const file = join(tmp(), 'j.jsonl');
    appendFileSync(file, '{"n":1}\nxx\n{"n":2}\n');
    expect(() => Journal.open(file)).toThrow(/j.jsonl: line 2 is not JSON/);
  });

  it('replaces files atomically', () => {
    const file = join(tmp(), 'sub', 'cursor');
    expect(readFileIfExists(file)).toBeUndefined();
    writeFileAtomic(file, '42');
    expect(readFileIfExists(file)).toBe('42');
    // a display file (no fsync): replaced the same way, no temp file left beside it
    writeFileAtomic(file, '43', { durable: false });
    expect(readFileIfExists(file)).toBe('43');
    expect(readdirSync(join(file, '..'))).toEqual(['cursor']);
  });
});

describe('Spool', () => {
  it('holds events through an outage and sends each once, in order, also across processes', async () => {
    const dir = tmp();
    const spool = new Spool(dir, 'clinic-a');
    const ev = (n: number) => ({ type: 'mv.order-status.v1' as const, orderId: '00000000-0000-4000-8000-000000000000', site: 'clinic-a', state: 'running' as const, at: n });
    spool.add('status', ev(1));
    const link = new MemLink();
    link.down = true;
    await expect(spool.flush(link)).rejects.toThrow();
    link.down = false;
    new Spool(dir, 'clinic-a').add('status', ev(2)); // another process appends
    expect(await spool.flush(link)).toBe(2);
    expect(await spool.flush(link)).toBe(0);
    expect(link.messages.map((m) => JSON.parse(Buffer.from(m.data).toString()).at)).toEqual([1, 2]);
    expect(link.messages[0]!.subject).toBe('mv.v1.ev.clinic-a.status');
    expect(spool.pendingBytes()).toBe(0);
  });

  it('an event torn by a kill mid-append (never acknowledged to its writer) holds up none after it', async () => {
    const dir = tmp();
    const spool = new Spool(dir, 'clinic-a');
    const ev = (n: number) => ({ type: 'mv.order-status.v1' as const, orderId: '00000000-0000-4000-8000-000000000000', site: 'clinic-a', state: 'running' as const, at: n });
    spool.add('status', ev(1));
    appendFileSync(join(dir, 'events.jsonl'), '{"id":"torn","event":"status","bo'); // the writer died here
    spool.add('status', ev(2)); // the next start's events
    spool.add('status', ev(3));
    const link = new MemLink();
    expect(await spool.flush(link)).toBe(3);
    expect(link.messages.map((m) => JSON.parse(Buffer.from(m.data).toString()).at)).toEqual([1, 2, 3]);
    expect(spool.pendingBytes()).toBe(0);
  });
});
