#!/usr/bin/env node
/**
 * cli/: `medvault`, the technician's command line for the controller's HTTP API: log in with
 * password + TOTP, list sites and snapshots, raise restore orders and follow them to the end.
 *
 * Every command takes --json: the last line on stdout is then one JSON object (an error too).
 * Exit codes: 0 ok; 1 error; 2 usage or not logged in; 3 order refused; 4 restore failed;
 * 5 wait timed out; 6 restore done but not every file verified.
 */
import { Command, Option } from 'commander';
import { ApiClient, ApiError } from './api-client.js';
import { ask, readStdin } from './prompt.js';
import { progressBar, restoreExit, restoreOutcome, type OrderViewJson } from './restore-outcome.js';
import { loadSession, removeSession, saveSession, sessionPath } from './session-file.js';

class UsageError extends Error {}

let json = false;
const out = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
const say = (s: string): void => void process.stdout.write(`${s}\n`);

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
    const r = await new ApiClient(o.url).call<{ token: string; expiresAt: number; role: string; user: string; recoveryCodesLeft?: number; breakGlass?: boolean }>('POST', path, {
      user: o.user,
      password,
      ...factor,
      ...(o.breakGlass !== undefined ? { reason: o.breakGlass } : {}),
    });
    saveSession({ url: o.url, token: r.token, user: r.user, expiresAt: r.expiresAt });
    if (json) out({ user: r.user, role: r.role, expiresAt: r.expiresAt, session: sessionPath(), ...(r.breakGlass ? { breakGlass: true } : {}), ...(r.recoveryCodesLeft !== undefined ? { recoveryCodesLeft: r.recoveryCodesLeft } : {}) });
    else {
      say(`logged in as ${r.user} (${r.role}); session in ${sessionPath()}`);
      if (r.breakGlass) say(`BREAK-GLASS session until ${new Date(r.expiresAt).toISOString()}: every request is audited and IT has been alerted`);
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
      else say(`order ${v.id}: ${v.state}`);
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
      say(`${s.site}\theartbeat ${hb}\tsnapshots ${String(s.snapshots)}\toff site ${off.objects} objects, ${off.bytes} bytes`);
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
    for (const s of r.snapshots) say(`${s.id.slice(0, 12)}\t${new Date(s.time).toISOString()}\t${s.store}\t${s.job}\t${s.files} files\t${s.bytes} bytes`);
  });

program
  .command('restore')
  .description('order a restore and follow it until the agent reports the outcome')
  .requiredOption('--site <site>', 'site id')
  .option('--snapshot <id>', "'latest' or a snapshot id", 'latest')
  .option('--path <path>', 'path inside the snapshot (repeatable; "" for everything)', (v: string, acc: string[]) => [...acc, v], [] as string[])
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
    if (!json) say(created.state === 'awaiting-approval' ? `order ${created.id} awaits approval by a second technician (medvault approve ${created.id})` : `order ${created.id} sent to ${o.site}`);
    let v = created;
    let timedOut = false;
    if (o.wait) {
      const bar = !json && process.stderr.isTTY === true;
      const deadline = Date.now() + timeoutS * 1000;
      let last = '';
      for (;;) {
        v = await api.call<OrderViewJson>('GET', `/api/v1/orders/${created.id}`);
        const line = progressBar(v);
        if (bar) process.stderr.write(`\r${line}`);
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
    else (outcome.exit === 0 ? say : (s: string) => process.stderr.write(`medvault: ${s}\n`))(outcome.message);
    process.exitCode = outcome.exit;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const usage = err instanceof UsageError || (err instanceof ApiError && err.status === 401);
  const code = err instanceof ApiError ? err.code : usage ? 'MV_ERR_CONFIG_INVALID' : 'MV_ERR_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`medvault: ${message}\n`);
  if (json) out({ error: { code, message } });
  process.exitCode = usage ? 2 : restoreExit.error;
}
