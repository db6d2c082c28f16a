/**
 * The dashboard's HTTP API, live WebSocket, static page and /metrics against a real nats-server:
 * roles, validation, a heartbeat turning a site critical live, acknowledging its alert.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SITE, publishEvent, startFixture, waitFor, addUser, call, login, type Fixture } from '../fixture.test-support.js';
import { simHeartbeat } from '../health/sim.test-support.js';

describe('dashboard API against a real nats-server', () => {
  let f: Fixture;
  let tech = '';
  let viewer = '';
  /** A live channel that collects every message. */
  const openLive = async (token?: string) => {
    const ws = new WebSocket(`${f.app.url.replace('http', 'ws')}/api/v1/live`);
    const messages: any[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code: number) => r(code)));
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    if (token !== undefined) ws.send(JSON.stringify({ type: 'auth', token }));
    return { ws, messages, closed };
  };
  const beat = (condition: Parameters<typeof simHeartbeat>[1]) => publishEvent(f, SITE, 'heartbeat', simHeartbeat(SITE, condition, Date.now(), { intervalS: 3600 }));

  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    for (const [name, role] of [['tess', 'technician'], ['vic', 'viewer']] as const) await addUser(f, name, role);
    tech = await login(f, 'tess');
    viewer = await login(f, 'vic');
    await beat('ok');
    await waitFor(() => f.app.health.monitor.summaries().some((s) => s.site === SITE), 5000, 'site assessed');
  });
  afterAll(async () => {
    await f?.dispose();
  });

  it('serves the page with a strict CSP, its modules, and nothing outside them', async () => {
    const page = await call(f, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="importmap">');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    for (const p of ['/ui/app.js', '/ui/style.css', '/ui/vendor/lit/index.js', '/ui/vendor/lit-html/lit-html.js', '/ui/vendor/@lit/reactive-element/reactive-element.js', '/ui/vendor/uplot/uPlot.esm.js']) {
      expect((await call(f, 'GET', p)).status, p).toBe(200);
    }
    for (const p of ['/ui/../package.json', '/ui/%2e%2e/src/app.ts', '/ui/vendor/lit/..%2F..%2Fpackage.json', '/ui/vendor/lit/package.json', '/ui/vendor/zod/index.js']) {
      expect((await call(f, 'GET', p)).status, p).toBe(404);
    }
  });

  it('needs a session for every API route; acknowledging needs a technician', async () => {
    for (const p of ['/api/v1/fleet', `/api/v1/sites/${SITE}/health`, `/api/v1/sites/${SITE}/timeline`, `/api/v1/sites/${SITE}/orders`, '/api/v1/alerts']) {
      expect((await call(f, 'GET', p)).status, p).toBe(401);
    }
    expect((await call(f, 'GET', '/api/v1/sites/nowhere/health', undefined, viewer)).status).toBe(404);
    expect((await call(f, 'GET', '/api/v1/sites/NOT_A_SITE/health', undefined, viewer)).status).toBe(400);
    expect((await call(f, 'GET', '/api/v1/alerts?state=maybe', undefined, viewer)).status).toBe(400);
  });

  it('shows the fleet, then a failed backup live: site critical, alert opened, acknowledged, resolved', async () => {
    const fleet = await call(f, 'GET', '/api/v1/fleet', undefined, viewer);
    expect(fleet.body.sites).toEqual([expect.objectContaining({ site: SITE, state: 'ok', stores: 2, diskState: 'ok', offsiteLagS: 0 })]);
    const live = await openLive(viewer);
    await waitFor(() => live.messages.some((m) => m.type === 'fleet'), 5000, 'fleet snapshot');
    expect(live.messages[0]).toMatchObject({ type: 'hello', user: 'vic', role: 'viewer' });

    await beat('failed-backup');
    await waitFor(() => live.messages.some((m) => m.type === 'site' && m.site.site === SITE && m.site.state === 'critical'), 5000, 'site critical on the live channel');
    const opened = live.messages.find((m) => m.type === 'alert' && m.change === 'open');
    expect(opened.alert).toMatchObject({ site: SITE, code: 'MV_ALERT_BACKUP_FAILED', severity: 'critical', state: 'open', store: 'records' });
    const id = opened.alert.id as string;

    const health = await call(f, 'GET', `/api/v1/sites/${SITE}/health`, undefined, viewer);
    expect(health.body).toMatchObject({ state: 'critical', stores: [{ name: 'records', state: 'critical' }, { name: 'ehr', state: 'ok' }] });
    expect((await call(f, 'GET', '/api/v1/alerts', undefined, viewer)).body.alerts.map((a: any) => a.id)).toEqual([id]);

    expect((await call(f, 'POST', `/api/v1/alerts/${id}/ack`, {}, viewer)).status).toBe(403);
    const ack = await call(f, 'POST', `/api/v1/alerts/${id}/ack`, { note: 'disk ordered' }, tech);
    expect(ack.body.alert.ack).toMatchObject({ by: 'tess', note: 'disk ordered' });
    await waitFor(() => live.messages.some((m) => m.type === 'alert' && m.change === 'ack'), 5000, 'ack on the live channel');
    expect(f.app.audit).toBeDefined();

    const metrics = await call(f, 'GET', '/metrics');
    expect(metrics.text).toContain('medvault_sites{state="critical"} 1');
    expect(metrics.text).toContain('medvault_alerts_open{severity="critical"} 1');
    expect(metrics.text).toContain('medvault_alerts_acknowledged 1');
    expect(metrics.text).toContain(`medvault_site_state{site="${SITE}"} 2`);
    expect(metrics.text).toContain('medvault_dashboard_clients 1');

    await beat('ok');
    await waitFor(() => live.messages.some((m) => m.type === 'alert' && m.change === 'resolve' && m.alert.id === id), 5000, 'alert resolved by itself');
    expect((await call(f, 'GET', '/api/v1/alerts', undefined, viewer)).body.alerts).toEqual([]);
    expect((await call(f, 'GET', '/api/v1/alerts?state=all', undefined, viewer)).body.alerts[0]).toMatchObject({ id, state: 'resolved', ack: { by: 'tess' } });
    expect((await call(f, 'POST', `/api/v1/alerts/${id}/ack`, {}, tech)).status).toBe(409);
    const timeline = await call(f, 'GET', `/api/v1/sites/${SITE}/timeline`, undefined, viewer);
    expect(timeline.body).toMatchObject({ site: SITE, snapshots: [], runs: [] });
    expect(timeline.body.rpo.t.length).toBeGreaterThan(0);
    live.ws.close();
  });

  it('closes a live channel without a valid session (4401)', async () => {
    expect(await (await openLive('x'.repeat(43))).closed).toBe(4401);
    expect(await (await openLive('not json at all')).closed).toBe(4401);
  });
});
