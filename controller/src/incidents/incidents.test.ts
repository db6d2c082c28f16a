import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, streams, subjects } from '@medvault/protocol';
import { REPO, addUser, call as apiCall, login, publishEvent, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';

describe('incidents (real NATS): opened by a technician, durable, audited', () => {
  let f: Fixture;
  const tokens: Record<string, string> = {};
  const call = (method: string, path: string, body?: unknown, user = 'tess') => apiCall(f, method, path, body, tokens[user]);
  const loginAll = async () => {
    for (const u of ['tess', 'vic']) tokens[u] = await login(f, u);
  };

  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    await addUser(f, 'tess', 'technician');
    await addUser(f, 'vic', 'viewer');
    await loginAll();
    for (const [id, t] of [['1', 1000], ['2', 2000], ['3', 3000]] as const) {
      await publishEvent(f, 'clinic-a', 'snapshot', { type: 'mv.snapshot.v1', site: 'clinic-a', repo: REPO, id: id.repeat(64), store: 'records', job: 'incremental', time: f.now.value - 10_000 + t, files: 1, bytes: 1, needs: 1 });
    }
    await waitFor(() => f.app.fleet.snapshots('clinic-a').length === 3, 10_000, 'snapshots');
  });
  afterAll(async () => f?.dispose());

  it('opens with a scope and proposes the newest snapshot before the window; survives a restart; every change audited', async () => {
    const from = f.now.value - 10_000 + 2500;
    expect((await call('POST', '/api/v1/incidents', { title: 'lab folder deleted', scope: { sites: ['clinic-a'], paths: ['lab'], from } }, 'vic')).status).toBe(403);
    const bad = await call('POST', '/api/v1/incidents', { title: 'no scope' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('give an alert id, or a title and at least one site');
    const o = await call('POST', '/api/v1/incidents', { title: 'lab folder deleted', scope: { sites: ['clinic-a'], paths: ['lab'], from } });
    expect(o.status).toBe(201);
    expect(o.body).toMatchObject({ state: 'open', openedBy: 'tess', scope: { sites: ['clinic-a'], paths: ['lab'], from }, proposed: { snapshot: '2'.repeat(64), store: 'records' } });
    const id = o.body.id as string;
    expect((await call('POST', `/api/v1/incidents/${id}/notes`, { text: '' })).body.error.message).toContain('an empty note');
    expect((await call('POST', `/api/v1/incidents/${id}/notes`, { text: 'asked the lab which files' })).status).toBe(200);

    await f.restart();
    await loginAll();
    const shown = await call('GET', `/api/v1/incidents/${id}`, undefined, 'vic');
    expect(shown.body.notes).toEqual([expect.objectContaining({ by: 'tess', text: 'asked the lab which files' })]);
    expect((await call('POST', `/api/v1/incidents/${id}/close`, { resolution: 'files restored from 2222' })).body.state).toBe('closed');
    const late = await call('POST', `/api/v1/incidents/${id}/notes`, { text: 'late' });
    expect(late.status).toBe(409);
    expect((await call('GET', '/api/v1/incidents/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const report = await fetch(`${f.app.url}/api/v1/incidents/${id}/report?format=html`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    expect(report.headers.get('content-type')).toMatch(/text\/html/);
    expect(await report.text()).toContain('files restored from 2222');

    const audit = (await f.nats.bus.readSubject(streams.audit.name, subjects.controllerAudit(), 10_000)).map((m) => decode(m.data, 'mv.audit.v1'));
    const mine = audit.filter((e) => e.object === `incident:${id}`).map((e) => `${e.action}:${e.actor.id}`);
    expect(mine).toEqual(['incident.open:tess', 'incident.note:tess', 'incident.close:tess']);
    expect(audit.some((e) => e.action === 'report.export' && e.actor.id === 'vic')).toBe(true);
  });
});
