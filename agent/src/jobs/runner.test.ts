import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupLog } from '@medvault/protocol';
import type { FileStoreConfig } from '../config.js';
import { testRepo, tempDir } from '../repo/testing.js';
import type { AlertInput } from '../daemon/alerts.js';
import { JobRunner } from './runner.js';
import { readRuns } from './run-book.js';

async function setup(over: { blocked?: (s: string) => string | undefined } = {}) {
  const dir = await tempDir('mv-jobs-');
  const source = join(dir, 'records');
  mkdirSync(source);
  writeFileSync(join(source, 'a.json'), '{}');
  const t = await testRepo();
  const store: FileStoreConfig = { name: 'records', type: 'files', path: source, schedule: { full: '0 2 * * 0', incremental: '0 2 * * *' }, continuous: false, rpo_s: 60, rescan_s: 900 };
  const logs: BackupLog[] = [];
  const raised: AlertInput[] = [];
  const resolved: string[] = [];
  const runner = new JobRunner({
    site: 'clinic-a', stateDir: join(dir, 'state'), stores: [store], repos: () => [{ disk: t.store.root, repo: t.repo }],
    log: (e) => logs.push(e), alerts: { raise: (a) => raised.push(a), resolve: (k) => resolved.push(k) }, committed: () => {}, now: Date.now, ...over,
  });
  return { dir, source, t, runner, logs, raised, resolved, stateDir: join(dir, 'state') };
}

describe('JobRunner', () => {
  it('runs a never-run store at once (a full), records it in the run book and the backup log', async () => {
    const s = await setup();
    s.runner.planDue();
    await s.runner.idle();
    expect(s.logs.map((l) => [l.job, l.result])).toEqual([['full', 'ok']]);
    expect(s.logs[0]!.actor).toMatchObject({ kind: 'scheduler' });
    expect(readRuns(s.stateDir).records!.full).toBeGreaterThan(0);
    // Nothing more is due until the next occurrence.
    s.runner.planDue();
    await s.runner.idle();
    expect(s.logs).toHaveLength(1);
  });

  it('never overlaps: requests while running merge into one queued job, and a full wins', async () => {
    const s = await setup();
    s.runner.enqueue('records', 'continuous', 'watcher');
    s.runner.enqueue('records', 'continuous', 'watcher');
    s.runner.enqueue('records', 'full', 'schedule');
    s.runner.enqueue('records', 'continuous', 'watcher');
    await s.runner.idle();
    // the first run has no parent snapshot to trust: it is full, in the log, the history and the run book
    expect(s.logs.map((l) => l.job)).toEqual(['full', 'full']);
    expect(s.runner.history.map((h) => h.job)).toEqual(['full', 'full']);
    expect(Object.keys(readRuns(s.stateDir).records!)).toEqual(['full']);
    s.runner.enqueue('records', 'continuous', 'watcher');
    await s.runner.idle();
    expect(s.logs.at(-1)!.job).toBe('continuous');
    expect(s.runner.history.at(-1)!.job).toBe('continuous');
    expect((await s.t.repo.snapshots()).length).toBe(3);
  });

  it('a failed run raises an alert naming the store and disk, and the next good run resolves it', async () => {
    const s = await setup();
    rmSync(s.source, { recursive: true });
    s.runner.enqueue('records', 'incremental', 'test');
    await s.runner.idle();
    expect(s.logs[0]).toMatchObject({ result: 'failed' });
    expect(s.raised[0]!.message).toMatch(/store records on .*cannot read source/);
    mkdirSync(s.source);
    s.runner.enqueue('records', 'incremental', 'test');
    await s.runner.idle();
    expect(s.resolved).toContain(s.raised[0]!.key);
  });

  it('does not run while blocked (the store folder is gone), and logs why', async () => {
    const s = await setup({ blocked: () => 'store folder is missing' });
    s.runner.enqueue('records', 'continuous', 'watcher');
    await s.runner.idle();
    expect(s.logs[0]).toMatchObject({ result: 'failed', errors: [{ message: 'store folder is missing' }] });
    expect(await s.t.repo.snapshots()).toEqual([]);
  });
});
