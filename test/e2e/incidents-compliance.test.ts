/**
 * SOP 5.5 and 6 end to end in a secure fleet (TLS-only nats-server, per-site nkeys, controller and
 * agent as real processes): a ransomware alert from the real agent opens an incident (IT notified by
 * webhook) that proposes the last snapshot before the attack; a restore order of that snapshot is
 * attached and verified file by file; notes; closed with a resolution; exported as a signed PDF
 * read back with pdftotext. Then the backup log (CSV), a log review, and the compliance report for
 * the period (PDF → PNG checked, signature verified; MV_WRITE_DOCS=1 refreshes docs/compliance-report.*).
 * The dashboard's incidents page is checked in Debian's chromium.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../support/browser.js';
import { Fleet, must } from '../support/fleet.js';
import { BIN, run, until } from '../support/procs.js';
import { diffFingerprints, fingerprint, generateRecords } from '../support/records.js';
import { useFleet } from '../support/use-fleet.js';

const text = (file: string) => execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });

describe('incident from a ransomware alert to closure, backup log and compliance report', () => {
  let fleet: Fleet;
  let hook: Server;
  const hooks: any[] = [];
  const api = async (path: string) => {
    const s = JSON.parse(readFileSync(fleet.session.MEDVAULT_SESSION!, 'utf8'));
    const r = await fetch(`${fleet.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
    return r.json() as Promise<any>;
  };

  const ws = useFleet('incident', async (ws, start) => {
    hook = createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        hooks.push(JSON.parse(b));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const port = (hook.address() as { port: number }).port;
    const store = join(ws, 'clinic', 'records');
    mkdirSync(store, { recursive: true });
    generateRecords(store);
    fleet = await start({
      site: 'clinic-inc', store, storeLines: ['continuous = true', 'rpo_s = 10', '[stores.schedule]', 'full = "0 3 * * 0"', 'incremental = "30 1 * * *"'],
      controllerLines: ['[incidents]', `notify = ["http://127.0.0.1:${port}/it-and-management"]`],
    });
    await fleet.login();
  }, 120_000);

  afterAll(() => {
    if (process.env.MV_TEST_OUTPUT) process.stderr.write(fleet?.output() ?? '');
    hook?.close();
  });

  it('follows a ransomware incident to closure with a verified restore, exported as a signed PDF', async () => {
    const store = join(ws, 'clinic', 'records');
    const before = fingerprint(store);
    const good = must(await fleet.agent('backup', 'records', '--full'), 'backup').results[0].snapshot as string;
    fleet.startAgent();
    await until('the daemon watching', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'watching' ? true : undefined), 30_000);
    // Names are bytes (the generated store has names that are not UTF-8).
    const walk = (dir: Buffer): Buffer[] => readdirSync(dir, { encoding: 'buffer' }).flatMap((n) => {
      const p = Buffer.concat([dir, Buffer.from('/'), n]);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
    for (const f of walk(Buffer.from(store))) {
      writeFileSync(f, randomBytes(Math.max(1024, Math.min(statSync(f).size, 64 * 1024))));
      renameSync(f, Buffer.concat([f, Buffer.from('.locked')]));
    }
    const alert = await until('the ransomware alert on the controller', async () => (await api('/api/v1/alerts')).alerts.find((a: any) => a.code === 'MV_ALERT_RANSOMWARE'), 60_000);
    // The suspicious snapshot must be known to the controller before the incident can point before it.
    await until('both snapshots on the controller', async () => ((await api(`/api/v1/sites/${fleet.site}/snapshots`)).snapshots.length >= 2 ? true : undefined), 30_000);

    const opened = must(await fleet.medvault(['incident', 'open', '--alert', alert.id]), 'incident open');
    expect(opened).toMatchObject({ state: 'open', openedBy: 'tech', alert: { id: alert.id, code: 'MV_ALERT_RANSOMWARE', store: 'records' }, scope: { sites: [fleet.site], stores: ['records'] } });
    expect(opened.alert.snapshot).toMatch(/^[0-9a-f]{64}$/);
    expect(opened.alert.snapshot).not.toBe(good);
    expect(opened.proposed).toMatchObject({ snapshot: good, store: 'records' });
    expect(opened.proposed.reason).toContain('before the suspicious snapshot');
    const notice = await until('the webhook to IT and management', () => hooks.find((h) => h.alert?.code === 'MV_INCIDENT_OPEN'), 20_000);
    expect(notice.alert.message).toContain(good.slice(0, 12));

    // Bad input is refused with a clear error and nothing changes.
    const unknown = await fleet.medvault(['incident', 'open', '--alert', 'no-such-alert']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('alert no-such-alert is unknown');
    const badOrder = await fleet.medvault(['incident', 'attach', opened.id, '--order', '00000000-0000-4000-8000-000000000000']);
    expect(badOrder.stderr).toContain('order 00000000-0000-4000-8000-000000000000 is unknown');

    const target = join(ws, 'restore', 'incident');
    const restore = must(await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', good, '--path', '', '--target', target]), 'restore');
    expect(restore.state).toBe('done');
    expect(diffFingerprints(before, fingerprint(target))).toEqual([]);
    must(await fleet.medvault(['incident', 'attach', opened.id, '--order', restore.id]), 'attach');
    must(await fleet.medvault(['incident', 'note', opened.id, 'restored the pre-attack snapshot to a new folder; clinic verified patient files']), 'note');
    const shown = must(await fleet.medvault(['incident', 'show', opened.id]), 'show');
    expect(shown.orderViews).toEqual([expect.objectContaining({ id: restore.id, state: 'done', result: expect.objectContaining({ failed: [] }) })]);
    expect(shown.orderViews[0].result.verified).toBe(shown.orderViews[0].result.files);
    const closed = must(await fleet.medvault(['incident', 'close', opened.id, '--resolution', 'records restored from the pre-attack snapshot; workstation reimaged']), 'close');
    expect(closed.state).toBe('closed');
    const again = await fleet.medvault(['incident', 'note', opened.id, 'late']);
    expect(again.stderr).toMatch(/is closed/);

    const pdf = join(ws, 'incident.pdf');
    must(await fleet.medvault(['incident', 'export', opened.id, '--out', pdf]), 'export pdf');
    // Long ids wrap in table cells: compare without white space.
    const t = text(pdf);
    const flat = t.replace(/\s+/g, '');
    for (const s of [opened.id, 'MV_ALERT_RANSOMWARE', good, restore.id, 'records restored from the pre-attack snapshot', 'Verified file by file']) expect(flat, s).toContain(s.replace(/\s+/g, ''));
    expect(t).not.toContain('FAIL');
    const json = join(ws, 'incident.json');
    must(await fleet.medvault(['incident', 'export', opened.id, '--format', 'json', '--out', json]), 'export json');
    const ctl = ['--config', join(ws, 'controller.toml')];
    expect((await run(BIN.controller, ['report', 'verify', json, ...ctl])).code).toBe(0);
    writeFileSync(json, readFileSync(json, 'utf8').replace('workstation reimaged', 'nothing happened'));
    const forged = await run(BIN.controller, ['report', 'verify', json, ...ctl]);
    expect(forged.code).toBe(3);
    expect(forged.stderr).toContain('signature does not verify');

    // The dashboard's incidents page (Debian chromium) lists it, closed, with its restore point.
    const tb = await launchBrowser();
    try {
      const page = await tb.context.newPage();
      const token = JSON.parse(readFileSync(fleet.session.MEDVAULT_SESSION!, 'utf8')).token as string;
      await page.addInitScript({ content: `sessionStorage.setItem('mv.token', ${JSON.stringify(token)}); sessionStorage.setItem('mv.user', '{"user":"tech","role":"technician"}');` });
      await page.goto(`${fleet.url}/#/incidents`);
      const row = page.locator(`tr[data-incident="${opened.id}"][data-incident-state="closed"]`);
      await row.waitFor({ timeout: 15_000 });
      expect(await row.textContent()).toContain(good.slice(0, 12));
    } finally {
      await tb.close();
    }
  }, 240_000);

  it('exports the backup log, records a review and makes the compliance report (a new site owes no earlier run)', async () => {
    const csv = await fleet.medvault(['log', '--site', fleet.site, '--format', 'csv']);
    const lines = csv.stdout.trim().split('\r\n');
    expect(lines[0]).toBe('start,end,date,type,store,site,responsible person,result,files,bytes,errors');
    expect(lines.some((l) => /,full,records,clinic-inc,/.test(l))).toBe(true);
    expect(lines.some((l) => /,restore,[^,]*,clinic-inc,tech,ok,/.test(l)), lines.join('\n')).toBe(true);
    const day = 86_400_000;
    const from = new Date(Math.floor(Date.now() / day) * day - 2 * day).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const review = must(await fleet.medvault(['log', 'review', '--from', from, '--to', to, '--note', 'weekly review: one ransomware run, restored']), 'log review');
    expect(review.by).toBe('tech');

    // A drill from the local copy (the drill engineer's `medvault drill`): the report takes it from the drill book.
    const drill = await fleet.medvault(['drill', fleet.site, '--source', 'local', '--timeout', '120']);
    const drills = (drill.json?.drills ?? []) as Array<{ state: string }>;
    expect(drills.length, drill.stderr).toBeGreaterThan(0);

    const pdf = join(ws, 'compliance.pdf');
    must(await fleet.medvault(['report', 'compliance', '--from', from, '--to', to, '--out', pdf]), 'compliance pdf');
    const t = text(pdf);
    for (const s of ['SOP 5.1', 'SOP 5.3', 'SOP 5.4', 'SOP 5.5', '164.308(a)(7)', '164.312(b)', 'TLS only', 'AES-256-GCM', '1 of 1', 'weekly review: one ransomware run']) expect(t, s).toContain(s);
    const json = join(ws, 'compliance.json');
    must(await fleet.medvault(['report', 'compliance', '--from', from, '--to', to, '--format', 'json', '--out', json]), 'compliance json');
    expect((await run(BIN.controller, ['report', 'verify', json, '--config', join(ws, 'controller.toml')])).code).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8'));
    const section = (p: string) => r.sections.find((s: any) => s.heading.startsWith(p));
    // The site was first seen during this test, after today's scheduled 01:30: no run was due since,
    // so no gap is counted against it (runs missed before a site existed are not its failures; the
    // gaps of a site seen before the period are compliance.test.ts's golden cases).
    const inc = section('SOP 5.1: weekly').tables[0].rows.find((x: any) => x.cells[2] === 'incremental');
    expect(inc.cells[3]).toBe('30 1 * * *'); // the store's own schedule, from its heartbeat
    expect([inc.cells[6], inc.mark]).toEqual([0, 'pass']);
    expect(section('SOP 5.1: weekly').mark).toBe('pass');
    expect(r.mark).toBe(r.sections.some((s: any) => s.mark === 'fail') ? 'fail' : 'pass');
    const drillSection = section('SOP 5.4, HIPAA');
    expect(drillSection.facts.find((f: any) => f.label === 'Source').value).toBe('drill book');
    expect(drillSection.facts.find((f: any) => f.label === 'Drills in period').value).toBe(drills.filter((x) => x.state !== 'issued').length);
    expect(drillSection.mark).toBe(drills.some((x) => x.state === 'passed') ? 'pass' : 'fail');
    expect(section('SOP 5.4: regular review').mark).toBe('pass');
    expect(section('SOP 5.3').mark).toBe('pass');
    expect(section('SOP 5.5').mark).toBe('pass');
    expect(section('SOP 5.5').facts.find((f: any) => f.label === 'Closed with a resolution').value).toBe(1);
    expect(section('SOP 5.1 / 5.3').mark).toBe('pass');
    expect(section('HIPAA 164.312(b)').mark).toBe('pass');

    execFileSync('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', pdf, join(ws, 'compliance')]);
    const png = join(ws, 'compliance-1.png');
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    if (process.env.MV_WRITE_DOCS) {
      copyFileSync(pdf, join(import.meta.dirname, '..', '..', 'docs', 'compliance-report.pdf'));
      copyFileSync(png, join(import.meta.dirname, '..', '..', 'docs', 'compliance-report.png'));
    }
  }, 120_000);
});
