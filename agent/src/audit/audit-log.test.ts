import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainEntry, decode, type AuditEntry } from '@medvault/protocol';
import { AuditLog, appendAudit } from './audit-log.js';
import { Spool } from '../replicate/spool.js';
import { MemLink } from '../replicate/mem-link.js';

const site = 'clinic-a';

function filled(n = 6) {
  const dir = mkdtempSync(join(tmpdir(), 'mv-audit-'));
  const spool = new Spool(dir, site);
  const log = AuditLog.open(dir, site, { now: () => 1000, replicate: (e, id) => spool.add('audit', e, id) });
  for (let i = 0; i < n; i++) log.record({ actor: { kind: 'user', id: 'tess' }, action: 'order.accept', object: `order:${i}`, result: 'ok' });
  const lines = () => readFileSync(log.file, 'utf8').split('\n').filter(Boolean);
  const write = (ls: string[]) => writeFileSync(log.file, `${ls.join('\n')}\n`);
  return { dir, spool, log, lines, write };
}

describe('agent audit log', () => {
  it('chains entries, survives reopening, and replicates each entry once by seq', async () => {
    const t = filled();
    expect(t.log.verify()).toMatchObject({ ok: true, entries: 6, head: { seq: 6 } });
    t.log.close();
    const again = AuditLog.open(t.dir, site);
    expect(again.startReport.ok).toBe(true);
    expect(again.record({ actor: { kind: 'agent', id: site }, action: 'agent.start', object: 'x', result: 'ok' }).seq).toBe(7);
    const link = new MemLink();
    await t.spool.flush(link);
    await t.spool.flush(link);
    const audit = link.messages.filter((m) => m.subject === 'mv.v1.ev.clinic-a.audit');
    expect(audit.map((m) => decode(m.data, 'mv.audit.v1').seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('two writers (the daemon and a CLI restore) append to one chain without forking it', () => {
    const t = filled(2);
    const other = AuditLog.open(t.dir, site);
    for (let i = 0; i < 5; i++) {
      t.log.record({ actor: { kind: 'agent', id: site }, action: 'agent.start', object: `d${i}`, result: 'ok' });
      other.record({ actor: { kind: 'user', id: 'os:root' }, action: 'restore', object: `c${i}`, result: 'ok' });
      appendAudit(t.dir, site, { actor: { kind: 'user', id: 'os:root' }, action: 'restore', object: `x${i}`, result: 'ok' });
    }
    expect(t.log.verify()).toMatchObject({ ok: true, entries: 17, head: { seq: 17 } });
  });

  it('detects an edited line', () => {
    const t = filled();
    const ls = t.lines();
    ls[2] = ls[2]!.replace('order:2', 'order:9');
    t.write(ls);
    expect(t.log.verify()).toMatchObject({ ok: false, problems: [{ kind: 'edited', seq: 3 }] });
    // And the next start says so.
    expect(AuditLog.open(t.dir, site).startReport.ok).toBe(false);
  });

  it('detects an inserted line, even a well-formed one', () => {
    const t = filled();
    const ls = t.lines();
    const e2 = JSON.parse(ls[1]!) as AuditEntry;
    const forged = chainEntry(e2, { site, at: 1, actor: { kind: 'user', id: 'mallory' }, action: 'restore', object: 'x', result: 'ok' });
    ls.splice(2, 0, JSON.stringify(forged));
    t.write(ls);
    expect(t.log.verify().ok).toBe(false);
  });

  it('detects a deleted line, and a deleted last line against the replicated head', () => {
    const t = filled();
    const ls = t.lines();
    t.write(ls.filter((_, i) => i !== 3));
    expect(t.log.verify().ok).toBe(false);
    t.write(ls.slice(0, -1));
    expect(t.log.verify().ok).toBe(true); // a shorter chain is still a chain…
    const replicatedHead = { seq: 6, hash: (JSON.parse(ls[5]!) as AuditEntry).hash };
    expect(t.log.verify(replicatedHead)).toMatchObject({ ok: false, problems: [{ kind: 'truncated' }] }); // …but not the one the controller has
  });

  it('takes over at once the lock of a writer killed mid-append (its pid names no process)', () => {
    const t = filled(1);
    const dead = spawnSync('true').pid!; // exited: no process has this pid now
    writeFileSync(`${t.log.file}.lock`, String(dead));
    const t0 = Date.now();
    expect(appendAudit(t.dir, site, { actor: { kind: 'agent', id: site }, action: 'agent.start', object: 'x', result: 'ok' }).seq).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5000); // before: waited 10 s, then failed (a lock was stale only at 30 s)
    expect(existsSync(`${t.log.file}.lock`)).toBe(false);
    expect(t.log.verify()).toMatchObject({ ok: true, entries: 2 });
  });
});
