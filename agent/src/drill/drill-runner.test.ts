/**
 * Drills on real repositories (DirStore in a temp folder), a real record folder and the local
 * PostgreSQL (MEDVAULT_SKIP_DB=1 skips that case): figures from the snapshot, RTO and RPO measured,
 * a flipped byte in a pack fails the drill naming the files, scratch space and databases always gone.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newOrderId, validate, type BackupLog, type DrillResult } from '@medvault/protocol';
import type { DatabaseStoreConfig, FileStoreConfig } from '../config.js';
import { backupStoreTo } from '../jobs/backup-job.js';
import { flipByteInLargestPack, tempDir, testRepo, type TestRepo } from '../repo/testing.js';
import { nextOccurrence } from '../schedule/cron.js';
import { rpoTargetS } from '../schedule/planner.js';
import { DrillRunner, sampleOf, type DrillPlan } from './drill-runner.js';

const schedule = { full: '0 2 * * 0', incremental: '0 2 * * *' };
const actor = { kind: 'scheduler' as const, id: 'test' };
const psql = (sql: string, db = 'postgres') => execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-At', '-c', sql], { encoding: 'utf8' });

async function recordStore(): Promise<{ dir: string; files: number; bytes: number }> {
  const dir = await tempDir('mv-drill-records-');
  let bytes = 0;
  for (let i = 0; i < 30; i++) {
    mkdirSync(join(dir, `patient-${i % 5}`), { recursive: true });
    const b = randomBytes(1000 + i * 3000);
    writeFileSync(join(dir, `patient-${i % 5}`, `note-${i}.txt`), b);
    bytes += b.length;
  }
  return { dir, files: 30, bytes };
}

function harness(t: TestRepo, stores: DrillRunnerStores, drillDir: string, now = Date.now) {
  const published: { result: DrillResult; log: BackupLog }[] = [];
  const audited: unknown[] = [];
  const runner = new DrillRunner({
    site: 'clinic-a', stores, drillDir, now,
    open: async (source) => (source === 'local' ? { repo: t.repo, label: t.store.root, close: async () => {} } : undefined),
    publish: (result, log) => published.push({ result: validate(result, 'mv.drill-result.v1'), log: validate(log, 'mv.backup-log.v1') }),
    audit: { record: (r) => (audited.push(r), {} as never) },
  });
  return { runner, published, audited };
}
type DrillRunnerStores = ConstructorParameters<typeof DrillRunner>[0]['stores'];

const plan = (store: string, o: Partial<DrillPlan> = {}): DrillPlan => ({
  id: newOrderId(), store, snapshot: 'latest', sample: 1, sources: ['local'], requestedBy: { kind: 'user', id: 'tech' }, ...o,
});

describe('drills', () => {
  it('restores every file of the latest snapshot into scratch space, verifies it, measures RTO and RPO, cleans up', async () => {
    const t = await testRepo();
    const rec = await recordStore();
    const store: FileStoreConfig = { name: 'records', type: 'files', path: rec.dir, schedule, continuous: false, rpo_s: 3600, rescan_s: 900, rto_s: 600 };
    const snap = await backupStoreTo(t.repo, store, { job: 'full', actor });
    const drillDir = join(t.dir, 'drills');
    const h = harness(t, [store], drillDir);
    const before = Date.now();
    const r = await h.runner.run(plan('records', { sources: ['local', 'offsite'] }));
    const took = (Date.now() - before) / 1000;
    const local = r.runs.find((x) => x.source === 'local')!;
    expect(local).toMatchObject({ result: 'passed', files: rec.files, bytes: rec.bytes, verified: rec.files, failed: [] });
    expect(local.rtoS).toBeGreaterThan(0);
    expect(local.rtoS).toBeLessThanOrEqual(took);
    expect(r.snapshot).toBe(snap.snapshot);
    expect(r.rpoS!).toBeGreaterThanOrEqual(0);
    expect(r.rpoS!).toBeLessThan((Date.now() - before) / 1000 + 60);
    // no off-site copy here: that run fails and says why, so the drill fails
    const off = r.runs.find((x) => x.source === 'offsite')!;
    expect(off.result).toBe('failed');
    expect(off.error?.message).toMatch(/offsite copy is not available/);
    expect(r.result).toBe('failed');
    expect(r.met).toEqual({ rto: false, rpo: true });
    expect(readdirSync(drillDir)).toEqual([]);
    expect(h.published[0]!.log).toMatchObject({ job: 'drill', store: 'records', result: 'failed', files: rec.files, orderId: r.drillId });
    expect(h.audited[0]).toMatchObject({ action: 'drill', object: `drill:${r.drillId}`, result: 'failed' });

    const ok = await h.runner.run(plan('records'));
    expect(ok).toMatchObject({ result: 'passed', met: { rto: true, rpo: true }, targets: { rtoS: 600, rpoS: 3600 } });
    // the record store is untouched: the drill wrote only under drillDir
    expect(readdirSync(rec.dir).sort()).toEqual(['patient-0', 'patient-1', 'patient-2', 'patient-3', 'patient-4']);
  }, 60_000);

  it('samples a seeded share of the files (at least one), the same files for the same drill id', async () => {
    const items = Array.from({ length: 200 }, (_, i) => `f${i}`);
    expect(sampleOf(items, 0.1, 'a')).toHaveLength(20);
    expect(sampleOf(items, 0.1, 'a')).toEqual(sampleOf(items, 0.1, 'a'));
    expect(sampleOf(items, 0.1, 'a')).not.toEqual(sampleOf(items, 0.1, 'b'));
    expect(sampleOf(items, 0.0001, 'a')).toHaveLength(1);
    const t = await testRepo();
    const rec = await recordStore();
    const store: FileStoreConfig = { name: 'records', type: 'files', path: rec.dir, schedule, continuous: false, rpo_s: 3600, rescan_s: 900 };
    await backupStoreTo(t.repo, store, { job: 'full', actor });
    const r = await harness(t, [store], join(t.dir, 'drills')).runner.run(plan('records', { sample: 0.2 }));
    expect(r.runs[0]).toMatchObject({ result: 'passed', files: 6, verified: 6 });
    expect(r.targets.rtoS).toBe(14_400);
  }, 60_000);

  it('a store without rpo_s is held to the RPO target its heartbeat reports (the daily schedule plus 2 h), not 60 s', async () => {
    const t = await testRepo();
    const rec = await recordStore();
    const store: FileStoreConfig = { name: 'records', type: 'files', path: rec.dir, schedule, continuous: false, rescan_s: 900 };
    await backupStoreTo(t.repo, store, { job: 'full', actor });
    // the drill runs three hours after the snapshot, well within a daily schedule
    const r = await harness(t, [store], join(t.dir, 'drills'), () => Date.now() + 3 * 3600_000).runner.run(plan('records'));
    expect(r.targets.rpoS).toBe(rpoTargetS(store, nextOccurrence));
    expect(r.targets.rpoS).toBe(93_600);
    expect(r.rpoS!).toBeGreaterThan(3 * 3600 - 60);
    expect(r).toMatchObject({ result: 'passed', met: { rpo: true } });
  }, 60_000);

  it('a flipped byte in a local pack fails the drill, names the affected files, and still cleans up', async () => {
    const t = await testRepo();
    const rec = await recordStore();
    const store: FileStoreConfig = { name: 'records', type: 'files', path: rec.dir, schedule, continuous: false, rpo_s: 3600, rescan_s: 900 };
    await backupStoreTo(t.repo, store, { job: 'full', actor });
    flipByteInLargestPack(t.store.root);
    await t.reopen();
    const drillDir = join(t.dir, 'drills');
    const h = harness(t, [store], drillDir);
    const r = await h.runner.run(plan('records'));
    expect(r.result).toBe('failed');
    const run = r.runs[0]!;
    expect(run.result).toBe('failed');
    expect(run.failed.length).toBeGreaterThan(0);
    for (const f of run.failed) {
      expect(f.path).toMatch(/^patient-\d\/note-\d+\.txt$/);
      expect(f.reason).toMatch(/MV_ERR_DATA_CORRUPT/);
    }
    expect(run.error?.message).toContain(run.failed[0]!.path);
    expect(run.error?.message).toMatch(new RegExp(`^local: ${run.failed.length} files? not restored or not verified \\(${run.verified} of ${run.files} restored files verified\\)`));
    expect(h.published[0]!.log.errors.some((e) => e.path === run.failed[0]!.path)).toBe(true);
    expect(readdirSync(drillDir)).toEqual([]);
  }, 60_000);

  it('an unknown store fails the drill with the reason', async () => {
    const t = await testRepo();
    const h = harness(t, [], join(t.dir, 'drills'));
    const r = await h.runner.run(plan('nope'));
    expect(r).toMatchObject({ result: 'failed', runs: [], error: { code: 'MV_ERR_CONFIG_INVALID' } });
    expect(r.error!.message).toMatch(/no store named nope/);
    // reported like any drill, so the controller does not show it as issued for ever
    expect(h.published.map((p) => p.result)).toEqual([r]);
  });
});

describe.skipIf(process.env.MEDVAULT_SKIP_DB === '1')('database drills', () => {
  const db = `mv_drill_src_${process.pid}`;
  afterAll(() => void psql(`DROP DATABASE IF EXISTS "${db}"`));

  it('loads the dump into a scratch database, counts tables and rows, drops it', async () => {
    psql(`DROP DATABASE IF EXISTS "${db}"`);
    psql(`CREATE DATABASE "${db}"`);
    psql(`CREATE TABLE patient (id serial PRIMARY KEY, name text); CREATE TABLE visit (id serial, patient int);
          INSERT INTO patient (name) SELECT 'P' || g FROM generate_series(1, 250) g; INSERT INTO visit (patient) SELECT g % 250 FROM generate_series(1, 1000) g;`, db);
    const t = await testRepo();
    const store: DatabaseStoreConfig = { name: 'ehr', type: 'postgres', database: db, host: '127.0.0.1', user: 'postgres', schedule, rpo_s: 86400 };
    await backupStoreTo(t.repo, store, { job: 'full', actor });
    const r = await harness(t, [store], join(t.dir, 'drills')).runner.run(plan('ehr'));
    const run = r.runs[0]!;
    expect(run).toMatchObject({ result: 'passed', files: 1, verified: 1, database: { tables: 2, rows: 1250 } });
    expect(run.bytes).toBeGreaterThan(0);
    expect(r.result).toBe('passed');
    expect(psql(`SELECT count(*) FROM pg_database WHERE datname = '${run.database!.name}'`).trim()).toBe('0');
    expect(readdirSync(join(t.dir, 'drills'))).toEqual([]);
  }, 120_000);

  it('never uses, nor drops, a database that already has the scratch name', async () => {
    psql(`DROP DATABASE IF EXISTS "${db}"`);
    psql(`CREATE DATABASE "${db}"`);
    psql('CREATE TABLE patient (id int); INSERT INTO patient VALUES (1), (2);', db);
    const t = await testRepo();
    const store: DatabaseStoreConfig = { name: 'ehr', type: 'postgres', database: db, host: '127.0.0.1', user: 'postgres', schedule, rpo_s: 86400 };
    await backupStoreTo(t.repo, store, { job: 'full', actor });
    const p = plan('ehr');
    const taken = `medvault_drill_${p.id.slice(0, 8)}_local`;
    psql(`DROP DATABASE IF EXISTS "${taken}"`);
    psql(`CREATE DATABASE "${taken}"`);
    try {
      psql('CREATE TABLE keep (v text); INSERT INTO keep VALUES (\'not the drill\'\'s\');', taken);
      const r = await harness(t, [store], join(t.dir, 'drills')).runner.run(p);
      expect(r.result).toBe('failed');
      expect(r.runs[0]!.error!.message).toContain(`into database ${taken}: creating the database`);
      expect(r.runs[0]!.error!.message).toMatch(/already exists/);
      expect(psql('SELECT v FROM keep', taken).trim()).toBe("not the drill's");
      expect(existsSync(join(t.dir, 'drills')) ? readdirSync(join(t.dir, 'drills')) : []).toEqual([]); // no folder naming it for a clean-up
    } finally {
      psql(`DROP DATABASE IF EXISTS "${taken}"`);
    }
  }, 120_000);

  it('a drill cut short leaves a folder naming its scratch database: the next clean-up drops both; a server that is down keeps the folder', async () => {
    const t = await testRepo();
    const drillDir = join(t.dir, 'drills');
    const ehr: DatabaseStoreConfig = { name: 'ehr', type: 'postgres', database: db, host: '127.0.0.1', user: 'postgres', schedule, rpo_s: 86400 };
    const down: DatabaseStoreConfig = { ...ehr, name: 'ehr-down', port: 1 };
    // what a crash during the database load leaves behind: the folder (with the store's name) and the database
    const [a, b, c] = [newOrderId(), newOrderId(), newOrderId()];
    const scratchDb = `medvault_drill_${a.slice(0, 8)}_offsite`;
    psql(`DROP DATABASE IF EXISTS "${scratchDb}"`);
    psql(`CREATE DATABASE "${scratchDb}"`);
    for (const [id, source, store] of [[a, 'offsite', 'ehr'], [b, 'local', undefined], [c, 'local', 'ehr-down']] as const) {
      mkdirSync(join(drillDir, `${id}-${source}`, 'fhir'), { recursive: true });
      if (store) writeFileSync(join(drillDir, `${id}-${source}`, 'database-store'), `${store}\n`);
    }
    writeFileSync(join(drillDir, 'not-a-drill'), 'kept');
    const h = harness(t, [ehr, down], drillDir);
    expect((await h.runner.cleanLeftovers()).sort()).toEqual([`${a}-offsite`, `${b}-local`].sort());
    expect(psql(`SELECT count(*) FROM pg_database WHERE datname = '${scratchDb}'`).trim()).toBe('0');
    expect(readdirSync(drillDir).sort()).toEqual([`${c}-local`, 'not-a-drill'].sort());
  }, 60_000);
});
