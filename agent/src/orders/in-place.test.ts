/**
 * An in-place restore order against the daemon's backups of the same record store, with real
 * files, a real repository, the real JobRunner and Restorer: the restore waits for the running
 * backup, no backup starts while it writes, and one runs after it.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, makeOrder, type OrderStatus } from '@medvault/protocol';
import type { FileStoreConfig } from '../config.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { JobRunner } from '../jobs/runner.js';
import { Restorer } from '../restore/restorer.js';
import { OrderLedger } from './ledger.js';
import { OrderRunner } from './runner.js';

const site = 'clinic-a';

async function setup() {
  const dir = await tempDir('mv-in-place-');
  const source = join(dir, 'records');
  mkdirSync(join(source, 'fhir'), { recursive: true });
  writeFileSync(join(source, 'fhir', 'a.json'), '{"patient":"a"}');
  writeFileSync(join(source, 'fhir', 'b.json'), '{"patient":"b"}');
  // Large enough that a backup spans many event-loop turns.
  writeFileSync(join(source, 'scan.dcm'), randomBytes(2 << 20));
  const t = await testRepo();
  const store: FileStoreConfig = { name: 'records', type: 'files', path: source, schedule: { full: '0 2 * * 0', incremental: '0 2 * * *' }, continuous: false, rpo_s: 60, rescan_s: 900 };
  /** What happened, in order: each backup's start and end, each restore's start and end. */
  const events: string[] = [];
  const jobs = new JobRunner({
    site, stateDir: join(dir, 'state'), stores: [store], repos: () => [{ disk: t.store.root, repo: t.repo }],
    log: () => {}, alerts: { raise: () => {}, resolve: () => {} }, now: Date.now,
    // The runner's own hooks: `blocked` is asked as a run starts, `committed` as it ends.
    blocked: () => void events.push('backup-start'),
    committed: () => void events.push('backup-end'),
  });
  const key = generateSigningKey();
  const statuses: OrderStatus[] = [];
  const duringRestore: (() => void)[] = [];
  const runner = new OrderRunner({
    site, controllerKey: key.publicKey, ledger: OrderLedger.open(join(dir, 'orders'), undefined, Date.now() - 60_000),
    engine: () => ({
      async restore(o) {
        events.push('restore-start');
        for (const f of duringRestore) f();
        const r = await new Restorer(t.repo).restore(o);
        events.push('restore-end');
        return r;
      },
    }),
    restoreRoots: [dir], report: (s) => statuses.push(s), log: () => {}, now: Date.now,
    holdStores: (target, orderId) => jobs.hold(jobs.storesAt(target), `after in-place restore order ${orderId}`),
  });
  const order = (snapshot: string, target: string) =>
    makeOrder({ site, snapshot, paths: [], target, source: 'local', mode: 'overwrite', requestedBy: { user: 'tess', mfa: true } }, key, Date.now());
  return { dir, source, t, jobs, runner, events, statuses, duringRestore, order };
}

describe('in-place restore order vs backups of the same store', () => {
  it('waits for the running backup, holds off a backup asked for meanwhile, then one backup runs', async () => {
    const s = await setup();
    s.jobs.enqueue('records', 'full', 'test');
    await s.jobs.idle();
    const good = (await s.t.repo.snapshots())[0]!.hash;
    // The store is damaged; a backup of the damage is under way when the technician orders the restore.
    writeFileSync(join(s.source, 'fhir', 'a.json'), 'encrypted by ransomware');
    rmSync(join(s.source, 'fhir', 'b.json'));
    s.events.length = 0;
    s.jobs.enqueue('records', 'incremental', 'test');
    expect(s.jobs.current?.store).toBe('records');
    // A change the watcher would report while the restore writes: its backup must wait.
    s.duringRestore.push(() => s.jobs.enqueue('records', 'continuous', 'watcher events'));
    const verdict = await s.runner.handle(s.order(good, s.source), 1);
    expect(verdict.state).toBe('done');
    await s.jobs.idle();

    expect(s.events).toEqual(['backup-start', 'backup-end', 'restore-start', 'restore-end', 'backup-start', 'backup-end']);
    // The order said why it waited, then ran.
    const waiting = s.statuses.find((st) => st.state === 'accepted' && st.reason);
    expect(waiting?.reason?.message).toMatch(/waiting for the backup of store records running now/);
    expect(s.statuses.at(-1)!.state).toBe('done');
    // The store holds the restored state, and so does the one backup that ran after the restore.
    expect(readFileSync(join(s.source, 'fhir', 'a.json'), 'utf8')).toBe('{"patient":"a"}');
    expect(s.jobs.history.map((h) => [h.job, h.result])).toEqual([['full', 'ok'], ['incremental', 'ok'], ['continuous', 'ok']]);
    const check = join(s.dir, 'check');
    await new Restorer(s.t.repo).restore({ snapshot: s.jobs.history[2]!.snapshot!, paths: [], target: check, mode: 'new' });
    expect(readFileSync(join(check, 'fhir', 'a.json'), 'utf8')).toBe('{"patient":"a"}');
    expect(readFileSync(join(check, 'fhir', 'b.json'), 'utf8')).toBe('{"patient":"b"}');
  });

  it('a restore to another folder does not wait for the backup, and queues none', async () => {
    const s = await setup();
    s.jobs.enqueue('records', 'full', 'test');
    await s.jobs.idle();
    const good = (await s.t.repo.snapshots())[0]!.hash;
    s.events.length = 0;
    s.jobs.enqueue('records', 'incremental', 'test');
    const verdict = await s.runner.handle(s.order(good, join(s.dir, 'elsewhere')), 1);
    expect(verdict.state).toBe('done');
    await s.jobs.idle();
    expect(s.events.slice(0, 2)).toEqual(['backup-start', 'restore-start']);
    expect(s.events.filter((e) => e === 'backup-start')).toHaveLength(1);
    expect(s.statuses.some((st) => st.reason)).toBe(false);
  });
});
