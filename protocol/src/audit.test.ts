import { describe, expect, it } from 'vitest';
import { AUDIT_CSV_HEADER, GENESIS, auditCsvRow, auditHash, chainEntry, verifyChain, type AuditRecord } from './audit.js';
import type { AuditEntry } from './messages.js';

const rec = (i: number): AuditRecord => ({ at: 1_000 + i, actor: { kind: 'user', id: 'tess' }, action: 'order.issue', object: `order-${i}`, result: 'ok', detail: { n: i } });

function chain(n: number, site?: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) out.push(chainEntry(out.at(-1), { ...rec(i), ...(site ? { site } : {}) }));
  return out;
}

describe('audit chain', () => {
  it('links entries from GENESIS and verifies', () => {
    const c = chain(5);
    expect(c[0]!.prev).toBe(GENESIS);
    expect(c[1]!.prev).toBe(c[0]!.hash);
    expect(auditHash(c[3]!)).toBe(c[3]!.hash);
    const r = verifyChain(c, { site: null });
    expect(r).toMatchObject({ ok: true, entries: 5, head: { seq: 5, hash: c[4]!.hash } });
  });

  it('detects an edited entry at every position and in every member', () => {
    for (let i = 0; i < 5; i++) {
      for (const edit of [(e: AuditEntry) => ({ ...e, object: 'other' }), (e: AuditEntry) => ({ ...e, at: e.at + 1 }), (e: AuditEntry) => ({ ...e, result: 'failed' as const }), (e: AuditEntry) => ({ ...e, actor: { kind: 'user' as const, id: 'mallory' } })]) {
        const c: unknown[] = chain(5);
        c[i] = edit(c[i] as AuditEntry);
        const r = verifyChain(c);
        expect(r.ok).toBe(false);
        expect(r.problems[0]).toMatchObject({ index: i, kind: 'edited' });
      }
    }
  });

  it('detects an edit that recomputes the hash (the next link breaks), unless it is the head', () => {
    const c = chain(4);
    const forged = { ...c[1]!, object: 'forged' };
    c[1] = { ...forged, hash: auditHash(forged) };
    expect(verifyChain(c).problems.map((p) => p.kind)).toEqual(['link']);
  });

  it('detects an inserted entry, well-formed or copied', () => {
    const c = chain(4);
    const fake = chainEntry(c[1], rec(99));
    const inserted = [c[0], c[1], fake, c[2], c[3]];
    expect(verifyChain(inserted).ok).toBe(false);
    const dup = [c[0], c[1], c[1], c[2], c[3]];
    expect(verifyChain(dup).problems.some((p) => /twice/.test(p.message))).toBe(true);
  });

  it('detects a removed entry anywhere, and at the end against a known head', () => {
    const c = chain(5);
    for (let i = 0; i < 4; i++) {
      const removed = c.filter((_, j) => j !== i);
      expect(verifyChain(removed).ok, `removed ${i}`).toBe(false);
    }
    const head = { seq: 5, hash: c[4]!.hash };
    expect(verifyChain(c.slice(0, 4)).ok).toBe(true);
    expect(verifyChain(c.slice(0, 4), { head })).toMatchObject({ ok: false, problems: [{ kind: 'truncated' }] });
    expect(verifyChain(c, { head }).ok).toBe(true);
  });

  it('refuses garbled entries and entries of another site', () => {
    const c: unknown[] = chain(3, 'clinic-a');
    expect(verifyChain(c, { site: 'clinic-a' }).ok).toBe(true);
    expect(verifyChain(c, { site: 'clinic-b' }).ok).toBe(false);
    c[1] = { garbage: true };
    expect(verifyChain(c).problems.map((p) => p.kind)).toContain('garbled');
  });

  it('exports CSV rows that quote commas and defuse spreadsheet formulas', () => {
    const e = chainEntry(undefined, { ...rec(1), object: '=HYPERLINK("x"),y' });
    const row = auditCsvRow(e);
    expect(AUDIT_CSV_HEADER.split(',')).toHaveLength(11);
    expect(row).toContain(`"'=HYPERLINK(""x""),y"`);
  });
});
