#!/usr/bin/env node
/**
 * cli/: `medvault`, the technician's command line for the controller's HTTP API: log in with
 * password + TOTP, list sites and snapshots, raise restore orders and follow them to the end;
 * search and export the backup log, record log reviews, keep incident records, export reports;
 * put snapshots on legal hold (hold add|remove|list).
 *
 * Every command takes --json: the last line on stdout is then one JSON object (an error too).
 * Exit codes: 0 ok; 1 error; 2 usage or not logged in; 3 order refused; 4 restore failed;
 * 5 wait timed out; 6 restore done but not every file verified; 7 order rejected by the approver
 * (four-eyes) or not approved in time.
 */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { formatCount, printable, repeatable } from '@medvault/protocol';
import { ApiClient, ApiError } from './api-client.js';
import { ask, readStdin } from './prompt.js';
import { progressBar, restoreExit, restoreOutcome, type OrderViewJson } from './restore-outcome.js';
import { loadSession, removeSession, saveSession, sessionPath } from './session-file.js';

class UsageError extends Error {}

let json = false;
const out = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
/**
 * A line (or lines) for the technician: what the controller sends may carry what an agent reported
 * (paths, messages), and an agent can be compromised, so every control character but the line
 * breaks and column tabs this CLI puts there is escaped; fields from agents are printable() where
 * they are formatted, so their own tabs and line breaks show as escapes too.
 */
const say = (s: string): void => void process.stdout.write(`${printable(s, '\n\t')}\n`);
const warn = (s: string): void => void process.stderr.write(`medvault: ${printable(s, '\n')}\n`);

function client(): ApiClient {
  const s = loadSession();
  if (!s) throw new UsageError(`not logged in (no session at ${sessionPath()}): run medvault login --url URL --user NAME`);
  return new ApiClient(s.url, s.token);
}

const program = new Command('medvault').description('medvault technician CLI').option('--json', 'machine output: last line is a JSON object');
program.hook('preAction', () => {
  json = Boolean(program.opts().json);
});

program
  .command('login')
  .description('log in (password and TOTP code from a TTY, MEDVAULT_PASSWORD/MEDVAULT_TOTP, or --password-stdin)')
  .requiredOption('--url <url>', 'controller URL, e.g. http://127.0.0.1:8443')
  .requiredOption('--user <name>', 'your user name')
  .option('--password-stdin', 'read the password from stdin')
  .option('--totp <code>', 'the 6-digit code (else MEDVAULT_TOTP or a prompt)')
  .option('--recovery-code <code>', 'a single-use recovery code instead of the TOTP code (lost authenticator)')
  .option('--break-glass <reason>', 'EMERGENCY access: a short admin session; audited and alerted to IT at once')
  .action(async (o: { url: string; user: string; passwordStdin?: boolean; totp?: string; recoveryCode?: string; breakGlass?: string }) => {
    const tty = process.stdin.isTTY === true;
    const password = o.passwordStdin ? await readStdin() : (process.env.MEDVAULT_PASSWORD ?? (tty ? await ask('Password: ', true) : undefined));
    if (password === undefined) throw new UsageError('no password: give it on a TTY, in MEDVAULT_PASSWORD or with --password-stdin');
    const totp = o.recoveryCode ? undefined : (o.totp ?? process.env.MEDVAULT_TOTP ?? (tty && !o.passwordStdin ? await ask('TOTP code: ') : undefined));
    if (totp === undefined && !o.recoveryCode) throw new UsageError('no TOTP code: give it on a TTY, in MEDVAULT_TOTP or with --totp (or --recovery-code)');
    const factor = o.recoveryCode ? { recoveryCode: o.recoveryCode.trim() } : { totp: totp!.trim() };
    const path = o.breakGlass !== undefined ? '/api/v1/break-glass' : '/api/v1/login';
    const r = await new ApiClient(o.url).call<{ token: string; expiresAt: number; endsBy: number; role: string; user: string; recoveryCodesLeft?: number; breakGlass?: boolean }>('POST', path, {
      user: o.user,
      password,
      ...factor,
      ...(o.breakGlass !== undefined ? { reason: o.breakGlass } : {}),
    });
    saveSession({ url: o.url, token: r.token, user: r.user, expiresAt: r.expiresAt });
    if (json) out({ user: r.user, role: r.role, expiresAt: r.expiresAt, endsBy: r.endsBy, session: sessionPath(), ...(r.breakGlass ? { breakGlass: true } : {}), ...(r.recoveryCodesLeft !== undefined ? { recoveryCodesLeft: r.recoveryCodesLeft } : {}) });
    else {
      say(`logged in as ${r.user} (${r.role}); session in ${sessionPath()}`);
      if (r.breakGlass) say(`BREAK-GLASS session until ${new Date(r.endsBy).toISOString()} at the latest (logged off sooner when idle: next at ${new Date(r.expiresAt).toISOString()}, each request moves it): every request is audited and IT has been alerted`);
      if (r.recoveryCodesLeft !== undefined) say(`recovery code used: ${r.recoveryCodesLeft} left`);
    }
  });

for (const [verb, what] of [['approve', 'approve (sign and send) an in-place overwrite another technician requested (four-eyes)'], ['reject', 'reject a restore awaiting approval']] as const) {
  program
    .command(`${verb} <order-id>`)
    .description(what)
    .option('--reason <text>', 'why (reject)')
    .action(async (id: string, o: { reason?: string }) => {
      const v = await client().call<OrderViewJson>('POST', `/api/v1/orders/${encodeURIComponent(id)}/${verb}`, verb === 'reject' ? { reason: o.reason ?? '' } : {});
      if (json) out(v);
      else say(`order ${v.id}: ${v.state}${verb === 'approve' ? ` (follow it: medvault order ${v.id})` : ''}`);
    });
}

program
  .command('logout')
  .description('end the session')
  .action(async () => {
    const s = loadSession();
    if (s) await new ApiClient(s.url, s.token).call('POST', '/api/v1/logout').catch(() => undefined);
    removeSession();
    if (json) out({ ok: true });
    else say('logged out');
  });

program
  .command('sites')
  .description('list sites with their last heartbeat and what is off site')
  .action(async () => {
    const r = await client().call<{ sites: Array<Record<string, unknown> & { site: string }> }>('GET', '/api/v1/sites');
    if (json) return out(r);
    for (const s of r.sites) {
      const hb = typeof s.lastHeartbeatAt === 'number' ? new Date(s.lastHeartbeatAt).toISOString() : 'never';
      const off = s.offsite as { objects: number; bytes: number };
      say(`${s.site}\theartbeat ${hb}\tsnapshots ${String(s.snapshots)}\toff site ${formatCount(off.objects, 'object')}, ${formatCount(off.bytes, 'byte')}`);
    }
  });

program
  .command('snapshots')
  .description("list a site's snapshots, newest first")
  .requiredOption('--site <site>', 'site id')
  .action(async (o: { site: string }) => {
    const r = await client().call<{ snapshots: Array<{ id: string; store: string; time: number; job: string; files: number; bytes: number }> }>(
      'GET',
      `/api/v1/sites/${encodeURIComponent(o.site)}/snapshots`,
    );
    if (json) return out(r);
    for (const s of r.snapshots) say(`${s.id.slice(0, 12)}\t${new Date(s.time).toISOString()}\t${s.store}\t${s.job}\t${formatCount(s.files, 'file')}\t${formatCount(s.bytes, 'byte')}`);
  });

program
  .command('restore')
  .description('order a restore and follow it until the agent reports the outcome')
  .requiredOption('--site <site>', 'site id')
  .option('--snapshot <id>', "'latest' or a snapshot id", 'latest')
  .option('--path <path>', 'path inside the snapshot (repeatable; "" for everything)', repeatable, [] as string[])
  .requiredOption('--target <dir>', 'absolute folder on the appliance to restore into')
  .option('--store <name>', 'record store (for --snapshot latest)')
  .addOption(new Option('--source <source>', 'where the agent reads from').choices(['local', 'offsite', 'auto']).default('local'))
  .option('--overwrite', 'replace existing files in the target (default: refuse to)')
  .option('--no-wait', 'return once the order is sent')
  .option('--timeout <s>', 'seconds to wait for the outcome', '300')
  .action(async (o: { site: string; snapshot: string; path: string[]; target: string; store?: string; source: string; overwrite?: boolean; wait: boolean; timeout: string }) => {
    if (o.path.length === 0) throw new UsageError('give at least one --path');
    const timeoutS = Number(o.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout ${o.timeout}: seconds`);
    const api = client();
    const created = await api.call<OrderViewJson>('POST', '/api/v1/orders', {
      site: o.site,
      snapshot: o.snapshot,
      ...(o.store !== undefined ? { store: o.store } : {}),
      paths: o.path,
      target: o.target,
      source: o.source,
      mode: o.overwrite ? 'overwrite' : 'new',
    });
    if (!json) say(created.state === 'awaiting-approval' ? `order ${created.id} awaits approval by a second technician (medvault approve ${created.id}; then medvault order ${created.id} follows it)` : `order ${created.id} sent to ${o.site}`);
    await follow(api, created, o.wait ? timeoutS : 0);
  });

/**
 * Follows an order until it is final or `timeoutS` has passed (0: its state now), printing its
 * progress, then its outcome; sets the exit code as `restore` documents it.
 */
async function follow(api: ReturnType<typeof client>, first: OrderViewJson, timeoutS: number): Promise<void> {
  let v = first;
  let timedOut = false;
  if (timeoutS > 0) {
    const bar = !json && process.stderr.isTTY === true;
    const deadline = Date.now() + timeoutS * 1000;
    let last = '';
    for (;;) {
      v = await api.call<OrderViewJson>('GET', `/api/v1/orders/${first.id}`);
      const line = progressBar(v);
      if (bar) process.stderr.write(`\r${printable(line)}`);
      else if (!json && line !== last) say(line);
      last = line;
      if (v.final) break;
      if (Date.now() >= deadline) {
        timedOut = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (bar) process.stderr.write('\n');
  }
  const outcome = restoreOutcome(v, timedOut);
  if (json) out({ ...v, exit: outcome.exit, message: outcome.message });
  else (outcome.exit === 0 ? say : warn)(outcome.message);
  process.exitCode = outcome.exit;
}

program
  .command('order <order-id>')
  .description('follow an order already made (after restore --no-wait or its --timeout, or an approve) until the agent reports; exit codes as restore')
  .option('--no-wait', 'print its state now')
  .option('--timeout <s>', 'seconds to wait for the outcome', '300')
  .action(async (id: string, o: { wait: boolean; timeout: string }) => {
    const timeoutS = Number(o.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout ${o.timeout}: seconds`);
    const api = client();
    await follow(api, await api.call<OrderViewJson>('GET', `/api/v1/orders/${encodeURIComponent(id)}`), o.wait ? timeoutS : 0);
  });

const query = (o: Record<string, string | undefined>) => new URLSearchParams(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined)).toString();
/** Writes a downloaded file to --out (or stdout for text) and says where. */
async function saveDownload(path: string, to: string | undefined, fallback: string): Promise<void> {
  const bytes = await client().download(path);
  const file = to ?? fallback;
  if (file === '-') return void process.stdout.write(bytes);
  writeFileSync(file, bytes, { mode: 0o600 });
  if (json) out({ file, bytes: bytes.length });
  else say(`wrote ${file} (${bytes.length} bytes)`);
}

type LogOpts = { site?: string; store?: string; type?: string; person?: string; result?: string; since?: string; until?: string; format?: 'csv' | 'json'; out?: string };
const logCmd = program
  .command('log')
  .description('search the backup log of all sites (SOP 5.1) and export it as CSV or JSON')
  .option('--site <site>', 'only this site')
  .option('--store <name>', 'only this record store')
  .addOption(new Option('--type <type>', 'job type').choices(['full', 'incremental', 'continuous', 'restore', 'drill', 'check']))
  .option('--person <id>', 'only jobs this person (or scheduler/agent id) is responsible for')
  .addOption(new Option('--result <result>', 'only this result').choices(['ok', 'partial', 'failed']))
  .option('--since <time>', 'from this ISO date/time (inclusive)')
  .option('--until <time>', 'to this ISO date/time (exclusive)')
  .addOption(new Option('--format <format>', 'csv or json (default: a table)').choices(['csv', 'json']))
  .option('--out <file>', 'write the export here')
  .action(async (o: LogOpts) => {
    const q = query({ site: o.site, store: o.store, type: o.type, person: o.person, result: o.result, since: o.since, until: o.until });
    if (o.format === 'csv') return saveDownload(`/api/v1/log?${q}&format=csv`, o.out, '-');
    const r = await client().call<{ entries: Array<{ site: string; store: string; job: string; startedAt: number; endedAt: number; actor: { kind: string; id: string }; result: string; files: number; bytes: number; errors: unknown[] }> }>('GET', `/api/v1/log?${q}`);
    if (o.format === 'json' || json) {
      if (o.out) return void writeFileSync(o.out, `${JSON.stringify(r)}\n`, { mode: 0o600 });
      return out(r);
    }
    for (const e of r.entries) say(`${new Date(e.startedAt).toISOString()}\t${e.site}\t${e.store}\t${e.job}\t${e.actor.kind === 'user' ? e.actor.id : `${e.actor.kind}:${e.actor.id}`}\t${e.result}\t${formatCount(e.files, 'file')}\t${formatCount(e.bytes, 'byte')}${e.errors.length ? `\t${formatCount(e.errors.length, 'error')}` : ''}`);
  });

logCmd
  .command('review')
  .description('record that you reviewed the backup log for a period (SOP 5.4; audited, counted in the compliance report)')
  .requiredOption('--from <time>', 'start of the reviewed period (ISO date/time)')
  .requiredOption('--to <time>', 'end of the reviewed period (ISO date/time)')
  .requiredOption('--note <text>', 'what you checked and found')
  .option('--site <site>', 'only this site was reviewed')
  .action(async (o: { from: string; to: string; note: string; site?: string }) => {
    const r = await client().call<{ by: string; entries: number; failed: number }>('POST', '/api/v1/log/reviews', { from: o.from, to: o.to, note: o.note, ...(o.site ? { site: o.site } : {}) });
    if (json) out(r);
    else say(`review recorded by ${r.by}: ${formatCount(r.entries, 'entry', 'entries')} in the period, ${r.failed} not ok`);
  });

type IncidentJson = { id: string; title: string; state: string; openedAt: number; openedBy: string; proposed?: { snapshot: string; store: string; time: number; reason: string }; orders: { id: string }[]; orderViews?: Array<{ id: string; state: string; result?: { files: number; verified: number; failed: string[] } }>; notes: { at: number; by: string; text: string }[]; resolution?: string };
const showIncident = (i: IncidentJson) => {
  if (json) return out(i);
  say(`incident ${i.id} (${i.state}): ${i.title}\n  opened ${new Date(i.openedAt).toISOString()} by ${i.openedBy}`);
  if (i.proposed) say(`  proposed restore point: ${i.proposed.snapshot} (${i.proposed.store}, ${new Date(i.proposed.time).toISOString()}): ${i.proposed.reason}`);
  for (const v of i.orderViews ?? i.orders.map((x) => ({ id: x.id, state: 'attached', result: undefined }))) {
    say(`  order ${v.id}: ${v.state}${v.result ? `, ${v.result.verified}/${v.result.files} verified, ${v.result.failed.length} failed` : ''}`);
  }
  for (const n of i.notes) say(`  note ${new Date(n.at).toISOString()} ${n.by}: ${n.text}`);
  if (i.resolution) say(`  resolution: ${i.resolution}`);
};
const incident = program.command('incident').description('incident records (SOP 5.5): open, follow, document, close, export');
incident
  .command('open')
  .description('open an incident from an alert (--alert) or by hand (--title and --site); IT and management are notified')
  .option('--alert <id>', 'the alert that started it')
  .option('--title <text>', 'what happened')
  .option('--site <site>', 'a site in scope (repeatable)', repeatable, [] as string[])
  .option('--store <name>', 'a record store in scope (repeatable)', repeatable, [] as string[])
  .option('--path <path>', 'a path in scope (repeatable)', repeatable, [] as string[])
  .option('--from <time>', 'start of the loss window (ISO)')
  .option('--to <time>', 'end of the loss window (ISO)')
  .action(async (o: { alert?: string; title?: string; site: string[]; store: string[]; path: string[]; from?: string; to?: string }) => {
    const ms = (v?: string) => (v === undefined ? undefined : Number.isNaN(Date.parse(v)) ? (() => { throw new UsageError(`${v}: an ISO date/time`); })() : Date.parse(v));
    const scope = { sites: o.site, stores: o.store, paths: o.path, ...(o.from ? { from: ms(o.from) } : {}), ...(o.to ? { to: ms(o.to) } : {}) };
    showIncident(await client().call<IncidentJson>('POST', '/api/v1/incidents', { ...(o.alert ? { alert: o.alert } : {}), ...(o.title ? { title: o.title } : {}), scope }));
  });
incident.command('list').description('incidents, newest first').action(async () => {
  const r = await client().call<{ incidents: IncidentJson[] }>('GET', '/api/v1/incidents');
  if (json) return out(r);
  for (const i of r.incidents) say(`${i.id}\t${i.state}\t${new Date(i.openedAt).toISOString()}\t${i.title}`);
});
incident.command('show <id>').description('the incident with its orders and their verification').action(async (id: string) => showIncident(await client().call<IncidentJson>('GET', `/api/v1/incidents/${encodeURIComponent(id)}`)));
incident.command('attach <id>').description('attach a restore order').requiredOption('--order <order-id>', 'the order').action(async (id: string, o: { order: string }) => showIncident(await client().call<IncidentJson>('POST', `/api/v1/incidents/${encodeURIComponent(id)}/orders`, { order: o.order })));
incident.command('note <id> <text>').description('add a note').action(async (id: string, text: string) => showIncident(await client().call<IncidentJson>('POST', `/api/v1/incidents/${encodeURIComponent(id)}/notes`, { text })));
incident.command('close <id>').description('close with a resolution').requiredOption('--resolution <text>', 'how it was resolved').action(async (id: string, o: { resolution: string }) => showIncident(await client().call<IncidentJson>('POST', `/api/v1/incidents/${encodeURIComponent(id)}/close`, { resolution: o.resolution })));
incident
  .command('export <id>')
  .description('the incident as a signed report')
  .addOption(new Option('--format <format>', 'pdf, html or json').choices(['pdf', 'html', 'json']).default('pdf'))
  .option('--out <file>', 'file to write (default incident-<id>.<format>; - for stdout)')
  .action(async (id: string, o: { format: string; out?: string }) => saveDownload(`/api/v1/incidents/${encodeURIComponent(id)}/report?format=${o.format}`, o.out, `incident-${id}.${o.format}`));

program
  .command('report')
  .description('signed reports')
  .command('compliance')
  .description('compliance report for a period: evidence per SOP clause and HIPAA 164.308(a)(7)/164.312, gaps marked failing')
  .requiredOption('--from <time>', 'start of the period (ISO date/time)')
  .requiredOption('--to <time>', 'end of the period (ISO date/time, exclusive)')
  .addOption(new Option('--format <format>', 'pdf, html or json').choices(['pdf', 'html', 'json']).default('pdf'))
  .option('--out <file>', 'file to write (default compliance-<from>-<to>.<format>; - for stdout)')
  .action(async (o: { from: string; to: string; format: string; out?: string }) =>
    saveDownload(`/api/v1/reports/compliance?${query({ from: o.from, to: o.to, format: o.format })}`, o.out, `compliance-${o.from.slice(0, 10)}-${o.to.slice(0, 10)}.${o.format}`));

type DrillJson = { id: string; site: string; store: string; state: string; result?: { rpoS?: number; targets: { rtoS: number; rpoS: number }; met: { rto: boolean; rpo: boolean }; runs: Array<{ source: string; result: string; files: number; bytes: number; verified: number; rtoS: number; failed: { path: string; reason: string }[]; error?: { message: string } }>; error?: { message: string } } };
/** One drill's line: state, measured RPO against its target, RTO target, and why it failed. */
function drillLine(x: DrillJson): string {
  const r = x.result;
  if (!r) return `drill ${x.id} of ${x.site}/${x.store}: ${x.state}`;
  const why = [
    ...(r.error ? [printable(r.error.message)] : []),
    ...r.runs.flatMap((run) => (run.error ? [`${run.source}: ${printable(run.error.message)}`] : run.failed.length ? [`${run.source}: ${formatCount(run.failed.length, 'file')} failed verification`] : [])),
    ...(!r.met.rpo && r.rpoS !== undefined ? [`RPO missed: the newest snapshot was ${r.rpoS} s old, target ${r.targets.rpoS} s`] : []),
    ...(!r.met.rto && r.runs.length && r.runs.every((run) => run.result === 'passed') ? [`RTO missed: ${Math.max(...r.runs.map((run) => run.rtoS))} s, target ${r.targets.rtoS} s`] : []),
  ];
  const rpo = `RPO ${r.rpoS ?? '?'} s (target ${r.targets.rpoS} s), RTO target ${r.targets.rtoS} s`;
  return `drill ${x.id} of ${x.site}/${x.store}: ${x.state}, ${rpo}${x.state === 'failed' && why.length ? `: ${why.join('; ')}` : ''}`;
}
const drill = program
  .command('drill <site>')
  .description('order a disaster-recovery drill of a site (every store, or --store) and wait for its result; `drill report <id>` fetches the signed report')
  .option('--store <name>', 'only this record store')
  .option('--sample <share>', 'share of the files restored, e.g. 0.2 (default: all)', '1')
  .option('--source <source>', 'local or offsite (repeatable; default both)', repeatable, [] as string[])
  .option('--no-wait', 'return once the orders are sent')
  .option('--timeout <s>', 'seconds to wait for the results', '600')
  .action(async (site: string, o: { store?: string; sample: string; source: string[]; wait: boolean; timeout: string }) => {
    const sample = Number(o.sample);
    if (!(sample > 0 && sample <= 1)) throw new UsageError(`--sample ${o.sample}: a share in (0, 1]`);
    const api = client();
    const r = await api.call<{ drills: DrillJson[] }>('POST', '/api/v1/drills', { site, sample, ...(o.store ? { store: o.store } : {}), ...(o.source.length ? { sources: o.source } : {}) });
    let drills = r.drills;
    if (!json) for (const x of drills) say(`drill ${x.id} of ${x.site}/${x.store} sent`);
    const deadline = Date.now() + Number(o.timeout) * 1000;
    while (o.wait && drills.some((x) => x.state === 'issued') && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 1000));
      drills = await Promise.all(drills.map((x) => api.call<DrillJson>('GET', `/api/v1/drills/${x.id}`)));
    }
    if (json) out({ drills });
    else for (const x of drills) {
      say(drillLine(x));
      for (const run of x.result?.runs ?? []) say(`  ${run.source}: ${run.result}, ${formatCount(run.files, 'file')}, ${formatCount(run.bytes, 'byte')}, ${run.verified} verified, RTO ${run.rtoS} s${run.failed.length ? `, ${run.failed.length} failed (${run.failed.slice(0, 3).map((f) => printable(f.path)).join(', ')})` : ''}`);
    }
    process.exitCode = drills.every((x) => x.state === 'passed') ? 0 : drills.some((x) => x.state === 'issued') ? 5 : 4;
  });
drill
  .command('report <id>')
  .description('the signed report of a drill')
  .addOption(new Option('--format <format>', 'pdf, html or json').choices(['pdf', 'html', 'json']).default('pdf'))
  .option('-o, --out <file>', 'file to write (default drill-<id>.<format>; - for stdout)')
  .action(async (id: string, o: { format: string; out?: string }) => saveDownload(`/api/v1/drills/${encodeURIComponent(id)}/report.${o.format}`, o.out, `drill-${id}.${o.format}`));

type HoldJson = { site: string; snapshot: string; active: boolean; reason: string; by: string; at: number; removed?: { by: string; at: number; reason: string } };
const showHold = (h: HoldJson) => say(`${h.site}\t${h.snapshot}\t${h.active ? 'held' : 'lifted'} since ${new Date(h.at).toISOString()} by ${h.by}: ${h.reason}${h.removed ? `\tlifted ${new Date(h.removed.at).toISOString()} by ${h.removed.by}: ${h.removed.reason}` : ''}`);
const hold = program.command('hold').description('legal holds: a held snapshot and every object it needs is never pruned off site (audited)');
for (const [verb, path, what] of [['add', '/api/v1/holds', 'put a snapshot on legal hold'], ['remove', '/api/v1/holds/remove', 'lift a legal hold']] as const) {
  hold
    .command(`${verb} <site> <snapshot>`)
    .description(`${what} (snapshot id or a prefix of at least 8 characters)`)
    .requiredOption('--reason <text>', 'why (case or ticket number)')
    .action(async (site: string, snapshot: string, o: { reason: string }) => {
      const h = await client().call<HoldJson>('POST', path, { site, snapshot, reason: o.reason });
      if (json) out(h);
      else showHold(h);
    });
}
hold
  .command('list [site]')
  .description('holds in force (of one site)')
  .option('--all', 'lifted holds too')
  .action(async (site: string | undefined, o: { all?: boolean }) => {
    const r = await client().call<{ holds: HoldJson[] }>('GET', `/api/v1/holds?${query({ site, all: o.all ? '1' : undefined })}`);
    if (json) return out(r);
    for (const h of r.holds) showHold(h);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const usage = err instanceof UsageError || (err instanceof ApiError && err.status === 401);
  const code = err instanceof ApiError ? err.code : usage ? 'MV_ERR_CONFIG_INVALID' : 'MV_ERR_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  warn(message);
  if (json) out({ error: { code, message } });
  process.exitCode = usage ? 2 : restoreExit.error;
}
