/**
 * Security end to end with the real programs on the secure setup (private CA, site enrolled with
 * `medvault-controller site add`, nats-server from `nats-config`): a restore by order leaves its
 * trace in both audit chains; `medvault-controller audit verify` (own chain, and the site's
 * replicated chain) and `medvault-agent audit verify` pass; exports are CSV and JSON; an edited,
 * inserted or deleted entry on either side makes verify fail.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '@medvault/protocol';
import { Fleet, must } from '../support/fleet.js';
import { BIN, run, until } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

describe('audit trails and enrolment, end to end (secure NATS)', () => {
  let fleet: Fleet;
  let target: string;
  const ws = useFleet('sec', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(join(store, 'fhir'), { recursive: true });
    writeFileSync(join(store, 'fhir', 'patient.json'), '{"resourceType":"Patient","id":"p1"}');
    target = join(ws, 'restore', 'out');
    mkdirSync(target, { recursive: true });
    fleet = await start({ site: 'clinic-sec', store });
    must(await fleet.agent('backup', 'records', '--full'), 'backup');
    fleet.startAgent();
    await fleet.login();
    await until('the site reporting to the controller', async () => ((await fleet.medvault(['sites'])).json?.sites?.some((x: { site: string }) => x.site === fleet.site) ? true : undefined), 60_000, 500);
    const r = await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', 'latest', '--path', 'fhir', '--target', target]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
  const ctl = (...args: string[]) => run(BIN.controller, ['--config', join(ws, 'controller.toml'), ...args]);

  it('the enrolment bundle holds the seed 0600, the CA and the pinned key; a second site add is refused', async () => {
    const bundle = join(ws, 'enrolment', fleet.site);
    expect(statSync(join(bundle, 'site.nk')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(bundle, 'agent.toml'), 'utf8')).toContain(fleet.controllerKey);
    expect(readFileSync(join(bundle, 'ca.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    expect((await ctl('site', 'add', fleet.site, '--out', join(ws, 'again'))).code).toBe(5);
    const conf = readFileSync(join(ws, 'nats-server.conf'), 'utf8');
    expect(conf).toMatch(/tls \{/);
    expect(conf).not.toMatch(/\bSU[A-Z2-7]{56}\b/); // no seed in the server config
  });

  it("the controller's chain records the enrolment, logins, the order and its key use, and verifies", async () => {
    const v = await ctl('audit', 'verify', '--json');
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toMatchObject({ ok: true, chain: 'controller' });
    const exp = await ctl('audit', 'export', '--format', 'json', '--out', join(ws, 'ctl.json'));
    expect(exp.code, exp.stderr).toBe(0);
    const entries = JSON.parse(readFileSync(join(ws, 'ctl.json'), 'utf8')).entries as AuditEntry[];
    const actions = entries.map((e) => e.action);
    for (const a of ['key.create', 'site.enrol', 'config.nats', 'user.add', 'controller.start', 'login', 'order.issue']) expect(actions, a).toContain(a);
    const csv = await ctl('audit', 'export', '--format', 'csv');
    expect(csv.stdout.split('\r\n')[0]).toBe('seq,time,site,actor_kind,actor_id,action,object,result,detail,prev,hash');
    expect(csv.stdout).toMatch(/order\.issue/);
    // An export with one entry edited, one inserted or one deleted fails verification (exit 6).
    const tamper = async (name: string, es: unknown[]) => {
      writeFileSync(join(ws, name), JSON.stringify({ chain: 'controller', entries: es }));
      return ctl('audit', 'verify', '--file', join(ws, name), '--json');
    };
    expect((await tamper('ok.json', entries)).code).toBe(0);
    expect((await tamper('edited.json', entries.map((e, i) => (i === 3 ? { ...e, actor: { kind: 'user', id: 'nobody' } } : e)))).code).toBe(6);
    expect((await tamper('inserted.json', [...entries.slice(0, 3), entries[1], ...entries.slice(3)])).code).toBe(6);
    expect((await tamper('deleted.json', entries.filter((_, i) => i !== 2))).code).toBe(6);
  });

  it("the agent's chain records the order and the restore, is replicated, and both copies verify", async () => {
    const site = await until('the replicated restore entry', async () => {
      const r = await ctl('audit', 'export', '--site', fleet.site, '--format', 'json');
      const es = r.code === 0 ? (JSON.parse(r.stdout).entries as AuditEntry[]) : [];
      return es.some((e) => e.action === 'restore') ? es : undefined;
    }, 30_000, 500);
    expect(site.map((e) => e.action)).toEqual(expect.arrayContaining(['config.change', 'agent.start', 'order.accept', 'restore']));
    expect(site.find((e) => e.action === 'order.accept')!.actor).toEqual({ kind: 'user', id: 'tech' });
    const v = await ctl('audit', 'verify', '--site', fleet.site, '--json');
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const local = await fleet.agent('audit', 'verify');
    expect(local.code, local.stdout).toBe(0);
    expect(local.json).toMatchObject({ ok: true });
  });

  it("an edited, inserted or deleted line in the appliance's audit log fails medvault-agent audit verify (exit 5)", async () => {
    await fleet.agentDaemon!.stop();
    const file = join(ws, 'appliance', 'state', 'audit.jsonl');
    const original = readFileSync(file, 'utf8');
    const lines = original.split('\n').filter(Boolean);
    const check = async (ls: string[]) => {
      writeFileSync(file, `${ls.join('\n')}\n`);
      return (await fleet.agent('audit', 'verify')).code;
    };
    expect(await check(lines)).toBe(0);
    expect(await check(lines.map((l, i) => (i === 1 ? l.replace('"result":"ok"', '"result":"failed"') : l)))).toBe(5);
    expect(await check([...lines.slice(0, 2), lines[0]!, ...lines.slice(2)])).toBe(5);
    expect(await check(lines.filter((_, i) => i !== 1))).toBe(5);
    // Removing the last line leaves a shorter valid chain; the replicated head catches it.
    const head = (await ctl('audit', 'verify', '--site', fleet.site, '--json')).json.head as { seq: number; hash: string };
    writeFileSync(file, `${lines.slice(0, -1).join('\n')}\n`);
    expect((await fleet.agent('audit', 'verify', '--head', `${head.seq}:${head.hash}`)).code).toBe(5);
    writeFileSync(file, original);
  });
});
