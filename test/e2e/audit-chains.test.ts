/**
 * An appliance replaced (state wiped, new chain at seq 1) within JetStream's duplicate window: the
 * new chain's entries reach the controller's copy (each chain has its own message ids), and
 * `audit verify --site` (readChain + verify) reports two intact chains, the second as an event,
 * while an edited or removed entry in either chain is still a problem. Real secure nats-server;
 * the agents' real AuditLog and Spool.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '@medvault/protocol';
import type { Nats } from '../../controller/src/nats.js';
import { readChain, verify } from '../../controller/src/audit/read.js';
import { startSecureSite, type SecureSite } from '../support/secure-nats.js';
import { until } from '../support/procs.js';
import type { Link } from '../../agent/src/replicate/link.js';
import { Spool } from '../../agent/src/replicate/spool.js';
import { AuditLog } from '../../agent/src/audit/audit-log.js';

const SITE = 'clinic-a';

describe('audit chains of a replaced appliance', () => {
  let s: SecureSite;
  let ctl: Nats;
  let link: Link;
  beforeAll(async () => {
    s = await startSecureSite('mv-chains-', [SITE], SITE);
    ({ ctl, link } = s);
  }, 60_000);
  afterAll(() => s?.dispose());

  /** One appliance's life: a fresh state dir, `n` entries, spool flushed (twice: a resend is absorbed). */
  const appliance = async (n: number, at: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-chains-state-'));
    const spool = new Spool(dir, SITE);
    const log = AuditLog.open(dir, SITE, { now: () => at, replicate: (e, id) => spool.add('audit', e, id) });
    for (let i = 0; i < n; i++) log.record({ actor: { kind: 'agent', id: SITE }, action: i === 0 ? 'agent.start' : 'order.accept', object: `order:${at}-${i}`, result: 'ok' });
    await spool.flush(link);
    rmSync(join(dir, 'events.cursor'));
    await spool.flush(link);
    log.close();
    rmSync(dir, { recursive: true, force: true });
    return log.head!;
  };

  it('keeps both chains, verifies each, reports the new one as an event, and still catches edits and removals', async () => {
    await appliance(4, Date.parse('2024-05-01T08:00:00Z'));
    const head = await appliance(3, Date.parse('2024-05-01T08:01:00Z')); // within the 2-minute window
    await until('both chains in the site audit stream', async () => ((await readChain(ctl.bus, SITE)).values.length >= 7 ? true : undefined), 10_000);
    const c = await readChain(ctl.bus, SITE);
    expect(c.values.map((v) => (v as AuditEntry).seq)).toEqual([1, 2, 3, 4, 1, 2, 3]);
    const r = verify(c, head);
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, entries: 7, head: { seq: 3 } });
    expect(r.starts).toHaveLength(1);
    expect(r.starts[0]!.message).toMatch(/^new chain started at 2024-05-01T08:01:00.000Z, first entry agent.start order:\d+-0 by agent:clinic-a \(3 entries\)$/);

    const values = c.values as AuditEntry[];
    const edited = values.map((e, i) => (i === 2 ? { ...e, object: 'order:forged' } : e));
    expect(verify({ ...c, values: edited }).problems).toMatchObject([{ kind: 'edited', seq: 3, index: 2 }]);
    const removed = values.filter((_, i) => i !== 5);
    expect(verify({ ...c, values: removed }).problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['gap', 'link']));
    expect(verify({ ...c, values: removed }).problems[0]).toMatchObject({ seq: 3, index: 5 });
    // Removed at the end of the last chain: the known head (the heartbeat's) catches it.
    expect(verify({ ...c, values: values.slice(0, 6) }, head).problems.map((p) => p.kind)).toContain('truncated');
  }, 60_000);
});
