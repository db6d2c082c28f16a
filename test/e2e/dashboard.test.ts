/**
 * The dashboard in a real browser (Debian's chromium, playwright-core) against a real fleet:
 * nats-server, controller and agent processes, plus five protocol-level simulated sites in other
 * states. A technician logs in with password + TOTP, sees the site ok, sees it go offline
 * (critical alert) when its agent stops and recover when it starts again, acknowledges the alert,
 * sends a restore order from the site page and watches it finish verified. Then drills: a real drill
 * of the agent's store from both copies, a failed one and an overdue one of simulated sites, shown
 * on the drills page and the site page (RTO per copy and RPO against the targets, the signed report
 * downloaded as PDF, next drill, overdue), and an incident opened by the technician listed with the
 * snapshot it proposes. Screenshots go to test-results/dashboard-*.png;
 * MEDVAULT_WRITE_DOCS=1 also writes docs/dashboard-drills.png.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { newOrderId, subjects, type DrillResult } from '@medvault/protocol';
import { Fleet, PASSWORD, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { RESULTS, launchBrowser, type TestBrowser } from '../support/browser.js';
import { useFleet } from '../support/use-fleet.js';
import { simHeartbeat, type SimCondition } from '../../controller/src/health/sim.test-support.js';

const DOCS = new URL('../../docs/', import.meta.url).pathname;
const SIMULATED: Array<[string, SimCondition]> = [
  ['clinic-north', 'ok'], ['clinic-harbour', 'failed-backup'], ['clinic-hillside', 'disk-full'], ['clinic-riverside', 'offsite-behind'], ['clinic-old-town', 'rpo-exceeded'],
];

describe('dashboard in chromium', () => {
  let fleet: Fleet;
  let tb: TestBrowser;
  let page: Page;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let sim: NodeJS.Timeout;
  let target: string;
  const shot = (name: string) => page.screenshot({ path: join(RESULTS, `dashboard-${name}.png`), fullPage: true });
  const row = (site: string, state?: string) => page.locator(`tr.site-row[data-site="${site}"]${state ? `[data-state="${state}"]` : ''}`);

  const ws = useFleet('dashboard', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(join(store, 'fhir'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(store, 'fhir', `patient-${i}.json`), JSON.stringify({ resourceType: 'Patient', id: `p${i}`, name: [{ family: `Doe${i}` }] }));
    target = join(ws, 'restore', 'out');
    mkdirSync(target, { recursive: true });
    fleet = await start({ site: 'clinic-dash', store });
    must(await fleet.agent('backup', 'records', '--full'), 'backup');
    fleet.startAgent();
    nc = await connect(fleet.natsOptions());
    js = jetstream(nc);
    const beat = () => {
      for (const [site, c] of SIMULATED) void js.publish(subjects.event(site, 'heartbeat'), JSON.stringify(simHeartbeat(site, c, Date.now(), { intervalS: 5 }))).catch(() => {});
    };
    beat();
    sim = setInterval(beat, 4000);
    tb = await launchBrowser();
    page = await tb.context.newPage();
  }, 120_000);

  afterAll(async () => {
    clearInterval(sim);
    await tb?.close();
    await nc?.close();
  });

  it('log in with TOTP, site goes offline and recovers, alert acknowledged, restore watched to the end', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(fleet.url);
    await page.fill('#user', 'tech');
    await page.fill('#password', PASSWORD);
    await page.fill('#totp', '000000');
    await page.click('button[type=submit]');
    await page.locator('[role=alert]').waitFor({ timeout: 10_000 });
    await page.fill('#totp', await fleet.freshTotp());
    await page.click('button[type=submit]');
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 10_000 });

    // The fleet: our site ok, the simulated ones in their states (the table is live, no reload).
    await row(fleet.site, 'ok').waitFor({ timeout: 30_000 });
    await row('clinic-harbour', 'critical').waitFor({ timeout: 15_000 });
    await row('clinic-riverside', 'warning').waitFor({ timeout: 15_000 });
    await shot('1-fleet');
    // Sorted by state, worst first; filterable.
    const order = await page.locator('tr.site-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-state')));
    expect(order.indexOf('critical')).toBeLessThan(order.indexOf('ok'));
    await page.fill('input[type=search]', 'hill');
    await page.locator('tr.site-row').first().waitFor();
    expect(await page.locator('tr.site-row').count()).toBe(1);
    await page.fill('input[type=search]', '');

    // The agent stops: the site is offline, with a critical alert, without a reload.
    const stoppedAt = Date.now();
    await fleet.agentDaemon!.stop();
    await row(fleet.site, 'offline').waitFor({ timeout: 30_000 });
    const offlineAfterS = (Date.now() - stoppedAt) / 1000;
    expect(offlineAfterS).toBeLessThan(25);
    await shot('2-offline');

    // Acknowledge it on the alerts page.
    await page.click('nav a[href="#/alerts"]');
    const alertRow = page.locator('tr[data-code="MV_ALERT_AGENT_OFFLINE"][data-alert-state="open"]', { hasText: fleet.site });
    await alertRow.waitFor({ timeout: 10_000 });
    expect(await alertRow.locator('.badge').first().getAttribute('data-state')).toBe('critical');
    await alertRow.locator('button.ack').click();
    await alertRow.locator('.badge.acked').waitFor({ timeout: 10_000 });
    expect(await alertRow.textContent()).toContain('tech');
    await shot('3-acknowledged');

    // The agent comes back: the site recovers and the alert resolves by itself.
    fleet.startAgent();
    await page.click('nav a[href="#/"]');
    await row(fleet.site, 'ok').waitFor({ timeout: 30_000 });
    await page.click('nav a[href="#/alerts"]');
    await alertRow.waitFor({ state: 'detached', timeout: 15_000 });
    await shot('4-recovered');

    // Restore from the site page and watch it finish.
    await page.click('nav a[href="#/"]');
    await row(fleet.site).click();
    await page.locator('form.order').waitFor();
    await page.locator('tr[data-store="records"]').waitFor();
    await page.fill('#paths', 'fhir');
    await page.fill('#target', target);
    await page.click('#restore');
    const progress = page.locator('.order-progress');
    await progress.waitFor({ timeout: 10_000 });
    await page.locator('.order-progress[data-order-state="done"]').waitFor({ timeout: 60_000 });
    expect(await progress.locator('.result').textContent()).toContain('20 verified');
    expect(readFileSync(join(target, 'fhir', 'patient-7.json'), 'utf8')).toContain('Doe7');
    await page.locator('table.orders tbody tr', { hasText: 'verified' }).waitFor({ timeout: 10_000 });
    await page.locator('mv-plot canvas').first().waitFor({ timeout: 10_000 });
    await shot('5-site-restored');
    // Drills: a real one of our store from both copies (once everything is off site) ...
    await until('the off-site copy complete', async () => ((await fleet.agent('status')).json as { backlog?: { objects: number } } | undefined)?.backlog?.objects === 0 || undefined, 120_000, 1000);
    await fleet.login();
    const drilled = must(await fleet.medvault(['drill', fleet.site, '--store', 'records', '--source', 'local', '--source', 'offsite']), 'medvault drill') as { drills: Array<{ id: string; state: string; result: DrillResult }> };
    const real = drilled.drills[0]!;
    expect(real.state).toBe('passed');
    // ... and, at protocol level like their heartbeats, a failed drill of one simulated site and a passed but 100-day-old one of another
    const now = Date.now();
    const simDrill = (site: string, at: number, passed: boolean): DrillResult => ({
      type: 'mv.drill-result.v1', drillId: newOrderId(), site, store: 'records', requestedBy: { kind: 'scheduler', id: 'drill-schedule' }, sample: 1, startedAt: at, endedAt: at + 95_000,
      result: passed ? 'passed' : 'failed', rpoS: 3600, targets: { rtoS: 3600, rpoS: 86_400 }, met: { rto: passed, rpo: true },
      runs: [{ source: 'local', result: passed ? 'passed' : 'failed', startedAt: at, endedAt: at + 95_000, rtoS: 95, files: 351, bytes: 54e6, verified: passed ? 351 : 349, failed: passed ? [] : [{ path: 'dicom/CT_small.dcm', reason: 'MV_ERR_DATA_CORRUPT: chunk does not authenticate' }] }],
      ...(passed ? {} : { error: { code: 'MV_ERR_DATA_CORRUPT', message: 'local: 2 of 351 file(s) not restored or not verified' } }),
    });
    await js.publish(subjects.event('clinic-harbour', 'drill'), JSON.stringify(simDrill('clinic-harbour', now - 3_600_000, false)));
    await js.publish(subjects.event('clinic-hillside', 'drill'), JSON.stringify(simDrill('clinic-hillside', now - 100 * 86_400_000, true)));

    await page.click('nav a[href="#/drills"]');
    const drillRow = (site: string, store = 'records') => page.locator(`tr.drill-row[data-site="${site}"][data-drill-store="${store}"]`);
    await drillRow(fleet.site).and(page.locator('[data-drill-state="passed"]')).waitFor({ timeout: 15_000 });
    const ours = drillRow(fleet.site);
    for (const source of ['local', 'offsite'] as const) {
      const cell = ours.locator(`td.rto [data-source="${source}"]`);
      expect(await cell.textContent()).toContain(`${source} ${Math.round(real.result.runs.find((x) => x.source === source)!.rtoS * 10) / 10} s`);
      expect(await cell.locator('.mark').getAttribute('data-mark')).toBe('pass');
    }
    expect(await ours.locator('td.rpo').textContent()).toContain(`${Math.round(real.result.rpoS! * 10) / 10} s`);
    expect(await ours.getAttribute('data-overdue')).toBe('no');
    await drillRow('clinic-harbour').and(page.locator('[data-drill-state="failed"]')).waitFor({ timeout: 15_000 });
    expect(await drillRow('clinic-harbour').textContent()).toContain('2 of 351 file(s) not restored');
    expect(await drillRow('clinic-harbour').locator('td.rto .mark').getAttribute('data-mark')).toBe('fail');
    await drillRow('clinic-hillside').and(page.locator('[data-overdue="yes"]')).waitFor({ timeout: 15_000 });
    expect(await drillRow('clinic-hillside').locator('.badge', { hasText: 'overdue' }).count()).toBe(1);
    // never drilled, new: not overdue
    expect(await drillRow('clinic-north').getAttribute('data-overdue')).toBe('no');
    // the report link downloads the signed PDF with the session
    const [download] = await Promise.all([page.waitForEvent('download'), ours.locator('a.report[data-format="pdf"]').click()]);
    const pdf = join(ws, 'drill.pdf');
    await download.saveAs(pdf);
    expect(readFileSync(pdf).subarray(0, 5).toString()).toBe('%PDF-');
    expect(download.suggestedFilename()).toBe(`drill-${real.id}.pdf`);
    await page.screenshot({ path: join(RESULTS, 'dashboard-drills.png'), fullPage: true });
    if (process.env.MEDVAULT_WRITE_DOCS === '1') await page.screenshot({ path: join(DOCS, 'dashboard-drills.png'), fullPage: true });
    // the site page shows its drills too
    await page.click(`tr.drill-row[data-site="${fleet.site}"] a[href="#/site/${fleet.site}"]`);
    await page.locator(`mv-site tr.drill-row[data-drill-store="records"][data-drill-state="passed"]`).waitFor({ timeout: 10_000 });
    // Incidents: one opened by the technician for our store is listed open, with the snapshot it proposes (the newest)
    const snaps = must(await fleet.medvault(['snapshots', '--site', fleet.site]), 'snapshots') as { snapshots: Array<{ id: string; store: string; time: number }> };
    const newest = snaps.snapshots.filter((x) => x.store === 'records').sort((a, b) => b.time - a.time)[0]!;
    const incident = must(await fleet.medvault(['incident', 'open', '--title', 'drill check: records restored to scratch', '--site', fleet.site, '--store', 'records']), 'incident open') as { id: string; proposed?: { snapshot: string } };
    expect(incident.proposed?.snapshot).toBe(newest.id);
    await page.click('nav a[href="#/incidents"]');
    const incidentRow = page.locator(`tr[data-incident="${incident.id}"][data-incident-state="open"]`);
    await incidentRow.waitFor({ timeout: 10_000 });
    expect(await incidentRow.textContent()).toContain(newest.id.slice(0, 12));
    expect(await incidentRow.textContent()).toContain(fleet.site);

    // The README's screenshot: the fleet overview.
    await page.click('nav a[href="#/"]');
    await row(fleet.site, 'ok').waitFor();
    await page.screenshot({ path: join(RESULTS, 'dashboard-fleet.png') });
    expect(errors).toEqual([]);
    expect(existsSync(join(RESULTS, 'dashboard-5-site-restored.png'))).toBe(true);
  }, 300_000);
});
