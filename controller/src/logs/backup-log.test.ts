import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, subjects, type BackupLog } from '@medvault/protocol';
import { MAX_LOG_PER_SITE } from '../fleet/registry.js';
import { addStaff, call as apiCall, heartbeat, publishEvent, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';
import { csvCell, logCsv, LOG_CSV_HEADER } from './backup-log.js';

const T0 = Date.UTC(2025, 0, 6, 2, 0); // a Monday, 02:00 UTC
const entry = (site: string, i: number, o: Partial<BackupLog> = {}): BackupLog => ({
  type: 'mv.backup-log.v1', site, jobId: randomUUID(), job: 'incremental', store: 'records', actor: { kind: 'scheduler', id: 'cron' },
  startedAt: T0 + i * 1000, endedAt: T0 + i * 1000 + 500, result: 'ok', files: i, bytes: i * 10, errors: [], ...o,
});

describe('backup log over all sites (real NATS)', () => {
  let f: Fixture;
  let tech: string;
  let viewer: string;
  const call = (method: string, path: string, body?: unknown, token = tech) => apiCall(f, method, path, body, token);

  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    ({ tech, viewer } = await addStaff(f));
    await publishEvent(f, 'clinic-b', 'heartbeat', heartbeat('clinic-b', f.now.value));
    // More entries for clinic-a than the registry keeps in memory.
    const n = MAX_LOG_PER_SITE + 5;
    for (let i = 0; i < n; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => f.nats.bus.publish(subjects.event('clinic-a', 'log'), encode(entry('clinic-a', i + k)))));
    }
    await publishEvent(f, 'clinic-b', 'log', entry('clinic-b', 1, { job: 'full', store: 'ehr, "main"', actor: { kind: 'user', id: 'tess' }, result: 'failed', errors: [{ code: 'MV_ERR_STORAGE_FAILED', message: 'disk full\nwhile writing', path: '=cmd|x' }] }));
    await publishEvent(f, 'clinic-b', 'log', entry('clinic-b', 2, { job: 'drill', actor: { kind: 'user', id: 'vic' } }));
    // A message that names another site than its subject: never counted.
    await publishEvent(f, 'clinic-b', 'log', entry('clinic-a', 3, { store: 'forged' }));
    await waitFor(() => f.app.fleet.log('clinic-b').length === 2 && f.app.fleet.log('clinic-a', 20_000).length === MAX_LOG_PER_SITE, 30_000, 'projection');
  });
  afterAll(async () => f?.dispose());

  it('reads every entry from MV_EVENTS, not the bounded registry', async () => {
    const r = await call('GET', '/api/v1/log?site=clinic-a', undefined, viewer);
    expect(r.status).toBe(200);
    expect(r.body.entries).toHaveLength(MAX_LOG_PER_SITE + 5);
    expect(r.body.entries[0].files).toBe(0);
  });

  it('filters by site, store, type, person, result and period', async () => {
    const q = async (s: string) => (await call('GET', `/api/v1/log?${s}`)).body.entries as BackupLog[];
    expect((await q('type=full')).map((e) => e.site)).toEqual(['clinic-b']);
    expect((await q('person=vic')).map((e) => e.job)).toEqual(['drill']);
    expect((await q('result=failed')).map((e) => e.store)).toEqual(['ehr, "main"']);
    expect(await q('store=forged')).toEqual([]);
    expect(await q(`site=clinic-a&since=${T0 + 10_000}&until=${T0 + 20_000}`)).toHaveLength(10);
    expect(await q(`since=${new Date(T0 + 10_000).toISOString()}&until=${new Date(T0 + 12_000).toISOString()}&site=clinic-a`)).toHaveLength(2);
    expect(await q('site=clinic-b&store=records')).toHaveLength(1);
    const bad = await call('GET', '/api/v1/log?type=weekly');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/type/);
    expect((await call('GET', '/api/v1/log?since=yesterday')).status).toBe(400);
  });

  it('exports CSV with the SOP columns, quoted and defused', async () => {
    const r = await call('GET', '/api/v1/log?site=clinic-b&format=csv');
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = r.text.split('\r\n');
    expect(lines[0]).toBe(LOG_CSV_HEADER);
    expect(lines[0]).toBe('start,end,date,type,store,site,responsible person,result,files,bytes,errors');
    expect(r.text).toContain(`${new Date(T0 + 1000).toISOString()},${new Date(T0 + 1500).toISOString()},2025-01-06,full,"ehr, ""main""",clinic-b,tess,failed,1,10,"MV_ERR_STORAGE_FAILED: disk full\nwhile writing (=cmd|x)"`);
    expect(lines.at(-1)).toBe('');
    expect(csvCell('=1+2')).toBe(`"'=1+2"`);
    expect(csvCell('plain')).toBe('plain');
    // OWASP: a leading CR or LF can also start a formula in some spreadsheets
    expect(csvCell('\r=cmd|x')).toBe(`"'\r=cmd|x"`);
    expect(csvCell('\n@SUM(1)')).toBe(`"'\n@SUM(1)"`);
    expect(logCsv([])).toBe(`${LOG_CSV_HEADER}\r\n`);
  });

  it('records log reviews in the audit chain (technician only) and lists them', async () => {
    const body = { from: '2025-01-01', to: '2025-02-01', note: 'checked all failed runs; clinic-b disk replaced' };
    expect((await call('POST', '/api/v1/log/reviews', body, viewer)).status).toBe(403);
    const r = await call('POST', '/api/v1/log/reviews', body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ by: 'tess', entries: MAX_LOG_PER_SITE + 5 + 2, failed: 1, from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 1, 1) });
    expect((await call('POST', '/api/v1/log/reviews', { ...body, to: '2024-01-01' })).status).toBe(400);
    const list = await call('GET', '/api/v1/log/reviews', undefined, viewer);
    expect(list.body.reviews).toEqual([expect.objectContaining({ by: 'tess', note: body.note })]);
  });
});
