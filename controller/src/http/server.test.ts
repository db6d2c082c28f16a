import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOrder, decode, type RestoreOrder } from '@medvault/protocol';
import { totpCode } from '../auth/totp.js';
import { REPO, SITE, controlMessages, heartbeat, publishEvent, startFixture, waitFor, PASSWORD, addUser, call, login, type Fixture } from '../fixture.test-support.js';

describe('HTTP API against a real nats-server', () => {
  let f: Fixture;
  let tech = '';
  let viewer = '';

  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    for (const [name, role] of [['tess', 'technician'], ['vic', 'viewer'], ['lock', 'viewer']] as const) {
      await addUser(f, name, role);
    }
    await publishEvent(f, SITE, 'heartbeat', heartbeat(SITE, f.now.value));
    await publishEvent(f, SITE, 'heartbeat', { ...heartbeat(SITE, f.now.value), site: 'clinic-z' }); // names another site: dropped
    await publishEvent(f, SITE, 'snapshot', {
      type: 'mv.snapshot.v1', site: SITE, repo: REPO, id: 'ab'.repeat(32), store: 'records', job: 'full', time: f.now.value, files: 3, bytes: 100, needs: 4,
    });
    await waitFor(() => f.app.fleet.snapshots(SITE).length === 1, 5000, 'events projected');
    tech = await login(f, 'tess');
    viewer = await login(f, 'vic');
  });
  afterAll(async () => {
    await f?.dispose();
  });

  it('answers health without a session', async () => {
    expect(await call(f, 'GET', '/api/v1/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('gives every error the {error: {code, message}} shape and the right status', async () => {
    const noAuth = await call(f, 'GET', '/api/v1/sites');
    expect(noAuth).toMatchObject({ status: 401, body: { error: { code: 'MV_ERR_AUTH_FAILED' } } });
    expect(typeof noAuth.body.error.message).toBe('string');
    expect(await call(f, 'GET', '/api/v1/sites', undefined, 'x'.repeat(43))).toMatchObject({ status: 401, body: { error: { code: 'MV_ERR_AUTH_FAILED' } } });
    expect(await call(f, 'POST', '/api/v1/login', { user: 'tess' })).toMatchObject({ status: 400, body: { error: { code: 'MV_ERR_MESSAGE_INVALID' } } });
    expect(await call(f, 'POST', '/api/v1/login', '{not json')).toMatchObject({ status: 400, body: { error: { code: 'MV_ERR_MESSAGE_INVALID' } } });
    expect(await call(f, 'GET', '/api/v1/sites/clinic-x', undefined, viewer)).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    expect(await call(f, 'GET', '/api/v1/sites/Not_A_Site', undefined, viewer)).toMatchObject({ status: 400, body: { error: { code: 'MV_ERR_MESSAGE_INVALID' } } });
    expect(await call(f, 'GET', '/api/v1/nothing', undefined, viewer)).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    expect(await call(f, 'GET', '/api/v1/orders/11111111-1111-4111-8111-111111111111', undefined, viewer)).toMatchObject({ status: 404 });
  });

  it('locks an account after repeated failures (429) and rate-limits login per user', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await call(f, 'POST', '/api/v1/login', { user: 'lock', password: 'wrong password!!', totp: '000000' })).toMatchObject({ status: 401 });
    }
    const locked = await call(f, 'POST', '/api/v1/login', { user: 'lock', password: PASSWORD, totp: totpCode(f.secrets.lock!, f.now.value) });
    expect(locked).toMatchObject({ status: 429, body: { error: { code: 'MV_ERR_AUTH_LOCKED' } } });
    let last;
    for (let i = 0; i < 10; i++) last = await call(f, 'POST', '/api/v1/login', { user: 'nobody', password: 'x', totp: '000000' });
    expect(last).toMatchObject({ status: 429, body: { error: { code: 'MV_ERR_RATE_LIMITED' } } });
  });

  it('lists sites, snapshots and the log to a viewer', async () => {
    const sites = await call(f, 'GET', '/api/v1/sites', undefined, viewer);
    expect(sites.status).toBe(200);
    expect(sites.body.sites).toHaveLength(1);
    expect(sites.body.sites[0]).toMatchObject({ site: SITE, agentVersion: '0.1.0', snapshots: 1, repos: 1 });
    const snaps = await call(f, 'GET', `/api/v1/sites/${SITE}/snapshots`, undefined, viewer);
    expect(snaps.body.snapshots[0]).toMatchObject({ id: 'ab'.repeat(32), needs: 4 });
    expect(await call(f, 'GET', `/api/v1/sites/${SITE}/log`, undefined, viewer)).toMatchObject({ status: 200, body: { entries: [] } });
    expect(await call(f, 'GET', `/api/v1/sites/${SITE}`, undefined, viewer)).toMatchObject({ status: 200, body: { site: SITE } });
  });

  it('refuses orders from a viewer (403), for an unknown site (404) and with bad input (400)', async () => {
    const req = { site: SITE, snapshot: 'latest', paths: ['patients/42'], target: '/srv/restore' };
    expect(await call(f, 'POST', '/api/v1/orders', req, viewer)).toMatchObject({ status: 403, body: { error: { code: 'MV_ERR_AUTH_FORBIDDEN' } } });
    const unknown = await call(f, 'POST', '/api/v1/orders', { ...req, site: 'clinic-q' }, tech);
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    expect(unknown.body.error.message).toContain('clinic-q');
    expect(await call(f, 'POST', '/api/v1/orders', { ...req, target: 'relative' }, tech)).toMatchObject({ status: 400 });
    // the agent's own path rule: nothing is signed that the agent would refuse
    for (const bad of ['../etc', '/patients/42', 'patients/./42', 'a\0b']) {
      const r = await call(f, 'POST', '/api/v1/orders', { ...req, paths: [bad] }, tech);
      expect(r, bad).toMatchObject({ status: 400 });
      expect(r.body.error.message, bad).toContain(JSON.stringify(bad));
    }
    expect(await call(f, 'POST', '/api/v1/orders', { ...req, extra: 1 }, tech)).toMatchObject({ status: 400 });
  });

  it('accepts the short snapshot ids it lists, resolved to the full hash, and names an unknown one', async () => {
    const req = { site: SITE, snapshot: 'ababab', paths: [''], target: '/srv/restore' };
    const created = await call(f, 'POST', '/api/v1/orders', req, tech);
    expect(created.status).toBe(201);
    expect(created.body.order.snapshot).toBe('ab'.repeat(32));
    const unknown = await call(f, 'POST', '/api/v1/orders', { ...req, snapshot: 'cdcdcd' }, tech);
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    expect(unknown.body.error.message).toContain('no snapshot cdcdcd');
    expect(await call(f, 'POST', '/api/v1/orders', { ...req, snapshot: 'abc' }, tech)).toMatchObject({ status: 400 });
  });

  it('publishes a signed order that checkOrder accepts for its site only, and follows its status', async () => {
    const created = await call(f, 'POST', '/api/v1/orders', { site: SITE, snapshot: 'latest', paths: ['patients/42'], target: '/srv/restore' }, tech);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({ state: 'sent', order: { source: 'local', mode: 'new', requestedBy: { user: 'tess', mfa: true } } });

    const msgs = await controlMessages(f);
    const onWire = msgs.filter((m) => m.subject === `mv.v1.ctl.${SITE}.order`).map((m) => decode(m.data, 'mv.restore-order.v1'));
    const order = onWire.find((o) => o.id === id) as RestoreOrder;
    expect(order).toBeDefined();
    expect(order.expiresAt - order.issuedAt).toBe(10 * 60_000);
    const ctx = { controllerKey: f.key.publicKey, now: f.now.value, seen: () => false };
    expect(checkOrder(order, { ...ctx, site: SITE })).toMatchObject({ ok: true });
    expect(checkOrder(order, { ...ctx, site: 'clinic-b' })).toMatchObject({ ok: false, code: 'MV_ERR_ORDER_SITE' });

    const status = (state: string, extra = {}) => ({ type: 'mv.order-status.v1', orderId: id, site: SITE, state, at: f.now.value, ...extra });
    await publishEvent(f, SITE, 'status', status('accepted'));
    await publishEvent(f, SITE, 'status', status('running', { progress: { files: 1, bytes: 10, totalFiles: 2, totalBytes: 20 } }));
    await publishEvent(f, 'clinic-b', 'status', { ...status('failed'), site: 'clinic-b' }); // another site cannot move this order
    await publishEvent(f, SITE, 'status', status('done', { result: { snapshot: 'ab'.repeat(32), files: 2, bytes: 20, verified: 2, failed: [] } }));
    const view = await waitFor(async () => {
      const r = await call(f, 'GET', `/api/v1/orders/${id}`, undefined, viewer);
      return r.body.state === 'done' && r.body;
    }, 5000, 'done');
    expect(view).toMatchObject({ final: true, progress: { files: 1, totalFiles: 2 }, result: { verified: 2 } });
    expect(view.history.map((h: { state: string }) => h.state)).toEqual(['accepted', 'running', 'done']);

    // Rebuilt from the streams after a restart.
    await f.restart();
    const token = await login(f, 'tess');
    expect(await call(f, 'GET', `/api/v1/orders/${id}`, undefined, token)).toMatchObject({ status: 200, body: { state: 'done' } });
    expect(await call(f, 'GET', `/api/v1/orders/${id}`, undefined, tech)).toMatchObject({ status: 401 });
  });

  it('logs off: the token stops working', async () => {
    const token = await login(f, 'vic');
    expect(await call(f, 'POST', '/api/v1/logout', undefined, token)).toMatchObject({ status: 200 });
    expect(await call(f, 'GET', '/api/v1/sites', undefined, token)).toMatchObject({ status: 401 });
  });

  it("refuses 'latest' without a store when the site has several stores", async () => {
    await publishEvent(f, SITE, 'snapshot', {
      type: 'mv.snapshot.v1', site: SITE, repo: REPO, id: 'cd'.repeat(32), store: 'imaging', job: 'full', time: f.now.value, files: 1, bytes: 1, needs: 2,
    });
    await waitFor(() => f.app.fleet.snapshots(SITE).length === 2, 5000, 'second store projected');
    const tech = await login(f, 'tess');
    const req = { site: SITE, snapshot: 'latest', paths: [''], target: '/srv/restore' };
    const r = await call(f, 'POST', '/api/v1/orders', req, tech);
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'MV_ERR_CONFIG_INVALID' } } });
    expect(r.body.error.message).toMatch(/several record stores \(.*imaging.*\): name the store/);
    expect((await call(f, 'POST', '/api/v1/orders', { ...req, store: 'imaging' }, tech)).status).toBe(201);
    // a store the site never reported: refused before an order is signed (it was sent, and failed on the agent)
    const typo = await call(f, 'POST', '/api/v1/orders', { ...req, store: 'imagin' }, tech);
    expect(typo).toMatchObject({ status: 404, body: { error: { code: 'MV_ERR_NOT_FOUND' } } });
    expect(typo.body.error.message).toMatch(/^site \S+ has no store imagin \(it reports .*imaging.*\)$/);
  });
});
