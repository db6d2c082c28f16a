/**
 * The drills' HTTP routes against a real nats-server: only a technician with a password + TOTP
 * session may start a drill (viewer 403, no session 401, no second factor no session), each order
 * is audited with the person's id before it is published signed; viewers read drills, the
 * schedule and the reports; an agent's refusal (a failed result with an error) ends "issued".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOrder, type AuditEntry, type DrillResult } from '@medvault/protocol';
import { readChain } from '../audit/read.js';
import { SITE, addStaff, call, controlMessages, publishEvent, startFixture, waitFor, type Fixture, PASSWORD } from '../fixture.test-support.js';
import { simHeartbeat } from '../health/sim.test-support.js';

describe('drill routes against a real nats-server', () => {
  let f: Fixture;
  let tech = '';
  let viewer = '';
  const drillOrders = async () => (await controlMessages(f)).filter((m) => m.subject.endsWith('.drill')).map((m) => JSON.parse(Buffer.from(m.data).toString('utf8')));

  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    ({ tech, viewer } = await addStaff(f));
    await publishEvent(f, SITE, 'heartbeat', simHeartbeat(SITE, 'ok', Date.now(), { intervalS: 3600 }));
    await waitFor(() => f.app.fleet.site(SITE)?.heartbeat?.stores?.length, 5000, 'heartbeat with stores');
  });
  afterAll(async () => {
    await f?.dispose();
  });

  it('needs a session with the second factor; a viewer may read but not start a drill', async () => {
    const body = { site: SITE, store: 'records' };
    for (const [m, p] of [['POST', '/api/v1/drills'], ['GET', '/api/v1/drills'], ['GET', '/api/v1/drills/schedule']] as const) {
      expect((await call(f, m, p, m === 'POST' ? body : undefined)).status, p).toBe(401);
    }
    // no session without TOTP: a password alone, or a wrong code, gets no token
    expect(await call(f, 'POST', '/api/v1/login', { user: 'tess', password: PASSWORD })).toMatchObject({ status: 400 });
    expect(await call(f, 'POST', '/api/v1/login', { user: 'tess', password: PASSWORD, totp: '000000' })).toMatchObject({ status: 401 });
    expect(await call(f, 'POST', '/api/v1/drills', body, viewer)).toMatchObject({ status: 403, body: { error: { code: 'MV_ERR_AUTH_FORBIDDEN' } } });
    expect((await call(f, 'GET', '/api/v1/drills', undefined, viewer)).body).toEqual({ drills: [] });
    expect(await drillOrders()).toEqual([]);
  });

  it('refuses bad input and unknown sites or stores, publishing nothing', async () => {
    expect(await call(f, 'POST', '/api/v1/drills', { site: SITE, sample: 0 }, tech)).toMatchObject({ status: 400, body: { error: { code: 'MV_ERR_MESSAGE_INVALID' } } });
    expect(await call(f, 'POST', '/api/v1/drills', { site: SITE, sources: ['tape'] }, tech)).toMatchObject({ status: 400 });
    expect(await call(f, 'POST', '/api/v1/drills', { site: 'clinic-nowhere' }, tech)).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    const r = await call(f, 'POST', '/api/v1/drills', { site: SITE, store: 'payroll' }, tech);
    expect(r).toMatchObject({ status: 404 });
    expect(r.body.error.message).toContain('payroll');
    expect(await call(f, 'GET', '/api/v1/drills/schedule?site=NOT_A_SITE', undefined, viewer)).toMatchObject({ status: 400 });
    // a short id (as the snapshot ids are given) is named a drill id, not "path: id: order id"
    expect(await call(f, 'GET', '/api/v1/drills/8cf1df07/report.json', undefined, viewer)).toMatchObject({ status: 400, body: { error: { message: 'path: id: drill id: the whole UUID that medvault drill printed (GET /api/v1/drills lists them)' } } });
    expect(await drillOrders()).toEqual([]);
  });

  it('a technician starts a drill: audited with their id, published signed, shown issued, then failed with the agent\'s reason', async () => {
    const r = await call(f, 'POST', '/api/v1/drills', { site: SITE, store: 'records', sample: 0.5, sources: ['local'] }, tech);
    expect(r.status).toBe(201);
    const [d] = r.body.drills;
    expect(d).toMatchObject({ site: SITE, store: 'records', state: 'issued', sample: 0.5, sources: ['local'], requestedBy: { kind: 'user', id: 'tess' } });
    const orders = await drillOrders();
    expect(orders).toHaveLength(1);
    expect(checkOrder(orders[0], { site: SITE, controllerKey: f.key.publicKey, now: f.now.value, seen: () => false }, 'mv.drill-order.v1')).toMatchObject({ ok: true });
    const audit = await waitFor(async () => (await readChain(f.nats.bus)).values.map((v) => v as AuditEntry).find((e) => e.action === 'drill.issue'), 5000, 'drill.issue audited');
    expect(audit).toMatchObject({ actor: { kind: 'user', id: 'tess' }, object: `drill:${d.id}`, result: 'ok', detail: { site: SITE, store: 'records' } });

    // the schedule shows it as the store's last drill; the other store has none yet; nothing overdue on a new site
    const sched = await call(f, 'GET', `/api/v1/drills/schedule?site=${SITE}`, undefined, viewer);
    expect(sched.body.every).toBe('quarterly');
    expect(sched.body.schedule.map((s: any) => [s.store, s.overdue, s.last?.id])).toEqual([['records', false, d.id], ['ehr', false, undefined]]);
    expect(await call(f, 'GET', `/api/v1/drills/${d.id}/report.pdf`, undefined, viewer)).toMatchObject({ status: 404 });

    // the agent refused it (expired on arrival): a failed result with the reason, no runs
    const refused: DrillResult = {
      type: 'mv.drill-result.v1', drillId: d.id, site: SITE, store: 'records', requestedBy: { kind: 'user', id: 'tess' }, sample: 0.5,
      startedAt: f.now.value, endedAt: f.now.value, result: 'failed', targets: { rtoS: 14400, rpoS: 60 }, met: { rto: false, rpo: false }, runs: [],
      error: { code: 'MV_ERR_ORDER_EXPIRED', message: `refused: order ${d.id}: expired` },
    };
    await publishEvent(f, SITE, 'drill', refused);
    const done = await waitFor(async () => {
      const g = await call(f, 'GET', `/api/v1/drills/${d.id}`, undefined, viewer);
      return g.body.state !== 'issued' && g;
    }, 5000, 'the drill leaves issued');
    expect(done.body).toMatchObject({ state: 'failed', result: { error: { code: 'MV_ERR_ORDER_EXPIRED' } }, report: { pdf: `/api/v1/drills/${d.id}/report.pdf` } });
    const json = await call(f, 'GET', `/api/v1/drills/${d.id}/report.json`, undefined, viewer);
    expect(json.status).toBe(200);
    expect(json.text).toContain('MV_ERR_ORDER_EXPIRED');
  });
});
