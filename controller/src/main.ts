#!/usr/bin/env node
/**
 * medvault-controller: the composition root. Parses the command line, loads the configuration,
 * opens NATS and the signing key, starts the app. The only place errors become exit codes:
 * 0 ok, 1 unexpected, 2 bad configuration or input, 3 key problem, 4 NATS unreachable, 5 conflict,
 * 6 audit chain broken, 7 off-site copy damaged.
 */
import { Command, Option } from 'commander';
import QRCode from 'qrcode';
import { MedvaultError, codes, exportPublicKey } from '@medvault/protocol';
import { startApp } from './app.js';
import { roles, type Role } from './auth/roles.js';
import { totpUri } from './auth/totp.js';
import { USERS_BUCKET, UserStore } from './auth/user-store.js';
import { ask, readStdin } from './cli/prompt.js';
import { loadConfig, type ConfigOverrides } from './config.js';
import { createLog } from './log.js';
import { openNats, type Nats, type NatsOptions } from './nats.js';
import { writeFileSync } from 'node:fs';
import { AUDIT_CSV_HEADER, auditCsvRow, type ChainHead } from '@medvault/protocol';
import { AuditTrail, queueAudit } from './audit/trail.js';
import { readChain, readExport, validEntries, verify } from './audit/read.js';
import { writeBundle } from './sites/bundle.js';
import { natsServerConfig } from './sites/nats-config.js';
import { SiteRegistry, controllerNkeyFile, initControllerNkey, nkeyPublic } from './sites/registry.js';
import type { ControllerConfig } from './config.js';
import { initSigningKey, loadSigningKey } from './signing-key.js';
import { checkConfig } from './config.js';
import { httpAlive, serviceWatchdog } from './systemd.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { formatCount, formatIssue, importPublicKey } from '@medvault/protocol';
import { verifyReportFile } from './reports/render.js';
import { Scrub } from './offsite/scrub.js';
import { rebuildIndex } from './offsite/rebuild.js';
import { offsitePolicy } from './offsite/config.js';
import { HOLDS_BUCKET, HoldBook } from './offsite/holds.js';
import { Pruner, formatPlan } from './offsite/prune.js';
import { RetentionBook } from './offsite/retention.js';

const exitCodes: Partial<Record<string, number>> = {
  [codes.CONFIG_INVALID]: 2,
  [codes.MESSAGE_INVALID]: 2,
  [codes.KEY_INVALID]: 3,
  [codes.SIGNATURE_INVALID]: 3,
  [codes.TRANSPORT_FAILED]: 4,
  [codes.CONFLICT]: 5,
  [codes.AUDIT_BROKEN]: 6,
  [codes.DATA_CORRUPT]: 7,
};

/** NATS connection options from the configuration: nkey and CA when configured (TLS only then). */
function natsOpts(c: ControllerConfig): NatsOptions {
  return {
    servers: c.nats.servers,
    ...(c.nats.creds ? { creds: c.nats.creds } : {}),
    ...(c.nats.nkey_file ? { nkeySeedFile: c.nats.nkey_file } : {}),
    ...(c.nats.ca_file ? { caFile: c.nats.ca_file } : {}),
    replicas: c.nats.replicas,
  };
}

/** Who runs this command on the controller host (for the audit trail). */
const operator = () => ({ kind: 'user' as const, id: `os:${process.env.SUDO_USER ?? process.env.USER ?? String(process.getuid?.() ?? 'unknown')}` });

/** Runs `use` with NATS open and the streams ensured; closes NATS whether or not `use` throws. */
async function withNats<T>(c: ControllerConfig, use: (nats: Nats) => Promise<T>): Promise<T> {
  const nats = await openNats(natsOpts(c));
  try {
    await nats.ensureStreams();
    return await use(nats);
  } finally {
    await nats.close();
  }
}

/** The audit trail of a one-shot command, the entries queued while NATS was away appended first. */
async function drainedTrail(c: ControllerConfig, nats: Nats): Promise<AuditTrail> {
  const t = new AuditTrail({ bus: nats.bus, clock: Date.now, log: createLog('silent') });
  await t.drainPending(c.state_dir);
  return t;
}

/** Opens NATS, appends one audit entry (after any queued ones), closes. */
async function auditNow(c: ControllerConfig, r: Parameters<AuditTrail['record']>[0]): Promise<void> {
  await withNats(c, async (nats) => (await drainedTrail(c, nats)).record(r));
}

const program = new Command('medvault-controller')
  .description('medvault controller: off-site ingest, fleet, orders, users')
  .option('--config <file>', 'configuration file (default /etc/medvault/controller.toml if present)')
  .option('--nats <urls>', 'NATS server URL(s), comma separated (overrides nats.servers)')
  .option('--state-dir <dir>', 'state folder holding controller.key (overrides state_dir)')
  .option('--port <n>', 'HTTP port, 0 for a free one (overrides http.port)', (v) => {
    if (!/^[0-9]{1,5}$/.test(v)) throw new MedvaultError(codes.CONFIG_INVALID, `--port ${v}: a port number`);
    return Number(v);
  })
  .showHelpAfterError();

const config = () => loadConfig(program.opts() as ConfigOverrides);
const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

program
  .command('init')
  .description('create the state folder and the signing key if missing')
  .action(() => {
    const c = config();
    const { key, created, file } = initSigningKey(c.state_dir);
    const nk = initControllerNkey(c.state_dir);
    if (created) queueAudit(c.state_dir, { at: Date.now(), actor: operator(), action: 'key.create', object: `key:${key.kid}`, result: 'ok', detail: { nkey: nk.publicKey } });
    print({ keyFile: file, created, kid: key.kid, publicKey: exportPublicKey(key.publicKey), nkeyFile: nk.file, nkey: nk.publicKey });
  });

program
  .command('key')
  .description('print the public key agents pin (controller_public_key)')
  .option('--json', 'print {publicKey, kid}')
  .action((o: { json?: boolean }) => {
    const key = loadSigningKey(config().state_dir);
    const pub = exportPublicKey(key.publicKey);
    if (o.json) print({ publicKey: pub, kid: key.kid });
    else process.stdout.write(`${pub}\n`);
  });

program
  .command('serve')
  .description('run the controller (JSON logs on stdout; the first "listening" line has the URL)')
  .action(async () => {
    const c = config();
    const log = createLog();
    // Under systemd the signing key may come through LoadCredential= (controller.key).
    const creds = process.env.CREDENTIALS_DIRECTORY;
    const key = loadSigningKey(creds && existsSync(join(creds, 'controller.key')) ? creds : c.state_dir);
    const nats = await openNats(natsOpts(c));
    const app = await startApp({ nats, key, clock: Date.now, config: c, log });
    const watchdog = serviceWatchdog([
      { name: 'ingest', check: async () => app.ingestor.consuming },
      { name: 'http', check: () => httpAlive(app.url) },
    ], (m, f) => log.warn(f, m));
    log.info({ kid: key.kid, publicKey: exportPublicKey(key.publicKey), nats: c.nats.servers }, 'controller started');
    watchdog.ready(`running: ${app.url}, NATS ${c.nats.servers.join(',')}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    log.info('stopping');
    watchdog.stopping();
    const force = setTimeout(() => {
      log.error('shutdown took over 10 s; exiting anyway');
      process.exit(1);
    }, 10_000);
    force.unref();
    process.once('SIGTERM', () => process.exit(1));
    process.once('SIGINT', () => process.exit(1));
    await app.stop();
    await nats.close();
  });

const user = program.command('user').description('manage people who may log in');

user
  .command('add <name>')
  .description('add an account; prints the TOTP secret, otpauth URI and a QR code to enrol an authenticator app')
  .addOption(new Option('--role <role>', 'viewer, technician or admin').choices(roles).makeOptionMandatory())
  .option('--password-stdin', 'read the password from stdin (also when stdin is not a TTY)')
  .option('--json', 'print {user, role, totpSecret, otpauthUri}')
  .action(async (name: string, o: { role: Role; passwordStdin?: boolean; json?: boolean }) => {
    const c = config();
    let password: string;
    if (o.passwordStdin || !process.stdin.isTTY) password = await readStdin();
    else {
      password = await ask('Password: ', true);
      if ((await ask('Repeat password: ', true)) !== password) throw new MedvaultError(codes.CONFIG_INVALID, 'the passwords differ');
    }
    await withNats(c, async (nats) => {
      const trail = await drainedTrail(c, nats);
      const users = new UserStore(await nats.bucket(USERS_BUCKET, { history: 5 }));
      const u = await users.add(name, o.role, password, Date.now());
      await trail.record({ actor: operator(), action: 'user.add', object: `user:${u.name}`, result: 'ok', detail: { role: u.role, totp: true, recoveryCodes: u.newRecoveryCodes.length } });
      const uri = totpUri(u.totpSecret, u.name);
      if (o.json) print({ user: u.name, role: u.role, totpSecret: u.totpSecret, otpauthUri: uri, recoveryCodes: u.newRecoveryCodes });
      else {
        process.stdout.write(`user ${u.name} (${u.role}) added\nTOTP secret: ${u.totpSecret}\n${uri}\n`);
        process.stdout.write(await QRCode.toString(uri, { type: 'terminal', small: true }));
        process.stdout.write(`Recovery codes (each works once instead of a TOTP code; store them offline, they are not shown again):\n  ${u.newRecoveryCodes.join('\n  ')}\n`);
      }
    });
  });

user
  .command('recovery-codes <name>')
  .description('issue ten new single-use recovery codes for an account (the old unused ones stop working)')
  .option('--json', 'print {user, recoveryCodes}')
  .action(async (name: string, o: { json?: boolean }) => {
    const c = config();
    await withNats(c, async (nats) => {
      const trail = await drainedTrail(c, nats);
      const codesNew = await new UserStore(await nats.bucket(USERS_BUCKET, { history: 5 })).renewRecoveryCodes(name);
      await trail.record({ actor: operator(), action: 'user.recovery-codes', object: `user:${name}`, result: 'ok', detail: { count: codesNew.length } });
      if (o.json) print({ user: name, recoveryCodes: codesNew });
      else process.stdout.write(`new recovery codes for ${name} (each works once; the old ones no longer do):\n  ${codesNew.join('\n  ')}\n`);
    });
  });

user
  .command('list')
  .description('list accounts')
  .option('--json', 'print a JSON array')
  .action(async (o: { json?: boolean }) => {
    const c = config();
    const nats = await openNats(natsOpts(c));
    try {
      const list = (await new UserStore(await nats.bucket(USERS_BUCKET, { history: 5 })).list()).map((u) => ({
        user: u.name,
        role: u.role,
        createdAt: u.createdAt,
        locked: u.lockedUntil !== undefined && u.lockedUntil > Date.now(),
      }));
      if (o.json) print(list);
      else for (const u of list) process.stdout.write(`${u.user}\t${u.role}${u.locked ? '\tlocked' : ''}\n`);
    } finally {
      await nats.close();
    }
  });

const site = program.command('site').description('enrol clinic appliances (their NATS identity)');

site
  .command('add <site>')
  .description("create the site's NATS nkey (allowed only its own subjects) and write the bundle the appliance installs")
  .requiredOption('--out <dir>', 'folder for the bundle (agent.toml, site.nk, ca.pem, controller.pub)')
  .option('--nats-url <urls>', 'NATS URL(s) as the appliance reaches them, comma separated (default: nats.servers)')
  .option('--ca <file>', 'CA certificate to pin (default: nats.ca_file)')
  .option('--rotate', 'replace the key of an enrolled site')
  .option('--json', 'print {site, nkey, bundle, files}')
  .action((name: string, o: { out: string; natsUrl?: string; ca?: string; rotate?: boolean; json?: boolean }) => {
    const c = config();
    const ca = o.ca ?? c.nats.ca_file;
    if (!ca) throw new MedvaultError(codes.CONFIG_INVALID, 'no CA certificate: give --ca or set nats.ca_file (deploy/make-ca.sh makes one)');
    const key = loadSigningKey(c.state_dir);
    const { record, seed } = new SiteRegistry(c.state_dir).add(name, operator().id, Date.now(), { ...(o.rotate ? { rotate: true } : {}) });
    const files = writeBundle(o.out, { site: name, seed, controllerPublicKey: exportPublicKey(key.publicKey), natsServers: o.natsUrl ? o.natsUrl.split(',') : c.nats.servers, caFile: ca });
    queueAudit(c.state_dir, { at: Date.now(), actor: operator(), action: o.rotate ? 'site.rotate' : 'site.enrol', object: `site:${name}`, result: 'ok', detail: { nkey: record.nkey, kid: key.kid } });
    if (o.json) print({ site: name, nkey: record.nkey, bundle: o.out, files });
    else process.stdout.write(`site ${name} enrolled (nkey ${record.nkey}); bundle in ${o.out}: ${files.join(', ')}\nnext: medvault-controller nats-config --out FILE, then reload nats-server\n`);
  });

site
  .command('list')
  .description('list enrolled sites')
  .option('--json', 'print a JSON array')
  .action((o: { json?: boolean }) => {
    const list = new SiteRegistry(config().state_dir).list();
    if (o.json) print(list);
    else for (const s of list) process.stdout.write(`${s.site}\t${s.nkey}\t${new Date(s.enrolledAt).toISOString()}\t${s.enrolledBy}\n`);
  });

program
  .command('nats-config')
  .description('write the nats-server configuration: TLS required, the controller and every enrolled site as nkey users with their permissions')
  .requiredOption('--out <file>', 'configuration file to write')
  .option('--cert <file>', 'server certificate (default nats_server.cert_file)')
  .option('--key <file>', 'server private key (default nats_server.key_file)')
  .option('--ca <file>', 'CA certificate (default nats.ca_file)')
  .option('--listen-port <n>', 'client port (default nats_server.port)')
  .option('--listen-host <host>', 'address to listen on (default nats_server.host)')
  .option('--store-dir <dir>', 'JetStream store (default nats_server.store_dir)')
  .action((o: { out: string; cert?: string; key?: string; ca?: string; listenPort?: string; listenHost?: string; storeDir?: string }) => {
    const c = config();
    const need = (v: string | undefined, what: string) => {
      if (!v) throw new MedvaultError(codes.CONFIG_INVALID, `nats-config: ${what} is needed`);
      return v;
    };
    const sites = new SiteRegistry(c.state_dir).list();
    const text = natsServerConfig({
      host: o.listenHost ?? c.nats_server.host,
      port: Number(o.listenPort ?? c.nats_server.port),
      storeDir: o.storeDir ?? c.nats_server.store_dir,
      tls: { certFile: need(o.cert ?? c.nats_server.cert_file, '--cert (or nats_server.cert_file)'), keyFile: need(o.key ?? c.nats_server.key_file, '--key (or nats_server.key_file)'), caFile: need(o.ca ?? c.nats.ca_file, '--ca (or nats.ca_file)') },
      controllerNkey: nkeyPublic(c.nats.nkey_file ?? controllerNkeyFile(c.state_dir)),
      sites: sites.map((x) => ({ site: x.site, nkey: x.nkey })),
    });
    writeFileSync(o.out, text, { mode: 0o600 });
    queueAudit(c.state_dir, { at: Date.now(), actor: operator(), action: 'config.nats', object: o.out.slice(0, 1000), result: 'ok', detail: { sites: sites.length } });
    print({ file: o.out, sites: sites.map((x) => x.site) });
  });

const audit = program.command('audit').description('the hash-chained audit trails: verify and export');

const parseHead = (v: string): ChainHead => {
  const m = /^([0-9]+):([0-9a-f]{64})$/.exec(v);
  if (!m) throw new MedvaultError(codes.CONFIG_INVALID, `--head ${v}: SEQ:HASH`);
  return { seq: Number(m[1]), hash: m[2]! };
};

audit
  .command('verify')
  .description("verify the controller's chain (MV_AUDIT), a site's replicated chain (--site) or an export (--file); exit 6 if broken")
  .option('--site <site>', "verify this site's agent chain instead")
  .option('--file <file>', 'verify a JSON export instead of the live chain')
  .option('--head <seq:hash>', 'a head recorded earlier: the chain must still contain it', parseHead)
  .option('--json', 'print the report as JSON')
  .action(async (o: { site?: string; file?: string; head?: ChainHead; json?: boolean }) => {
    const c = config();
    let chain;
    if (o.file) chain = readExport(o.file);
    else chain = await withNats(c, (nats) => readChain(nats.bus, o.site));
    const report = verify(chain, o.head);
    if (!o.file) await auditNow(c, { actor: operator(), action: 'audit.verify', object: `chain:${report.chain}`, result: report.ok ? 'ok' : 'failed', detail: { entries: report.entries, chains: report.starts.length + 1, problems: report.problems.length, head: report.head ? `${report.head.seq}:${report.head.hash}` : null } });
    if (o.json) print(report);
    else {
      process.stdout.write(`${report.chain}: ${formatCount(report.entries, 'entry', 'entries')}, ${report.ok ? 'chain intact' : formatCount(report.problems.length, 'problem')}${report.head ? `; head ${report.head.seq}:${report.head.hash}` : ''}\n`);
      for (const st of report.starts) process.stdout.write(`  ${st.message}\n`);
      for (const p of report.problems.slice(0, 50)) process.stdout.write(`  ${p.kind}: ${p.message}\n`);
    }
    if (!report.ok) throw new MedvaultError(codes.AUDIT_BROKEN, `audit chain ${report.chain} is broken: ${report.problems[0]!.message}`);
  });

audit
  .command('export')
  .description('export a chain as CSV or JSON (JSON exports can be verified with audit verify --file)')
  .option('--site <site>', "export this site's agent chain instead of the controller's")
  .addOption(new Option('--format <format>', 'csv or json').choices(['csv', 'json']).default('json'))
  .option('--out <file>', 'write here instead of stdout')
  .action(async (o: { site?: string; format: 'csv' | 'json'; out?: string }) => {
    const c = config();
    const chain = await withNats(c, (nats) => readChain(nats.bus, o.site));
    const text = o.format === 'json'
      ? `${JSON.stringify({ chain: chain.chain, exportedAt: Date.now(), entries: chain.values }, null, 1)}\n`
      : `${[AUDIT_CSV_HEADER, ...validEntries(chain).map(auditCsvRow)].join('\r\n')}\r\n`;
    await auditNow(c, { actor: operator(), action: 'audit.export', object: `chain:${chain.chain}`, result: 'ok', detail: { format: o.format, entries: chain.values.length, out: o.out ?? 'stdout' } });
    if (o.out) writeFileSync(o.out, text, { mode: 0o600 });
    else process.stdout.write(text);
  });

program
  .command('report')
  .description('signed reports (drill, incident, compliance)')
  .command('verify <file>')
  .description("check a report's signature (its .json form, or the .html that embeds it) against the controller key; exit 2 if it is not a report, 3 if the signature fails")
  .option('--key <public-key>', 'a pinned controller public key (base64url) instead of the one in the state folder')
  .option('--json', 'print {ok, kind, title, subjects, kid}')
  .action((file: string, o: { key?: string; json?: boolean }) => {
    const pub = o.key ? importPublicKey(o.key) : loadSigningKey(config().state_dir).publicKey;
    const r = verifyReportFile(file, pub);
    if (o.json) print({ ok: true, kind: r.kind, title: r.title, subjects: r.subjects, generatedAt: r.generatedAt, kid: r.sig!.kid });
    else process.stdout.write(`${file}: signature valid (key ${r.sig!.kid}): ${r.kind} report "${r.title}" of ${new Date(r.generatedAt).toISOString()}\n`);
  });

const offsite = program.command('offsite').description('the off-site copy: scrub and retention');

offsite
  .command('verify')
  .description('one scrub pass: read every receipted off-site copy back; damaged ones are purged and re-requested from the site; exit 7 on damage')
  .option('--site <site>', 'only this site')
  .option('--json', 'print the report as JSON')
  .action(async (o: { site?: string; json?: boolean }) => {
    const c = config();
    const r = await withNats(c, async (nats) => {
      const index = await rebuildIndex(nats.bus);
      const scrub = new Scrub({ bus: nats.bus, index, key: loadSigningKey(c.state_dir), clock: Date.now, log: createLog('silent'), rate: c.offsite.scrub_rate });
      return scrub.pass(o.site ? [o.site] : undefined);
    });
    await auditNow(c, { actor: operator(), action: 'offsite.scrub', object: o.site ?? 'all sites', result: r.damaged.length ? 'failed' : 'ok', detail: { objects: r.objects, bytes: r.bytes, damaged: r.damaged.length } });
    if (o.json) print({ ok: r.damaged.length === 0, ...r });
    else {
      process.stdout.write(`off-site copy: ${formatCount(r.objects, 'object')}, ${formatCount(r.bytes, 'byte')} read back, ${r.damaged.length} damaged\n`);
      for (const x of r.damaged) process.stdout.write(`  ${x.site} ${x.repo} ${x.kind} ${x.hash}: ${x.problem} (purged, resend requested)\n`);
    }
    if (r.damaged.length > 0) {
      const x = r.damaged[0]!;
      throw new MedvaultError(codes.DATA_CORRUPT, `${formatCount(r.damaged.length, 'damaged off-site copy', 'damaged off-site copies')}, first: site ${x.site} repository ${x.repo} ${x.kind} ${x.hash}: ${x.problem}`);
    }
  });

offsite
  .command('prune')
  .description('apply [offsite.retention] now: delete the copies no retained or held snapshot needs (audited); --dry-run says per snapshot why it is kept')
  .option('--site <site>', 'only this site')
  .option('--dry-run', 'plan only: delete nothing')
  .option('--json', 'print the report as JSON')
  .action(async (o: { site?: string; dryRun?: boolean; json?: boolean }) => {
    const c = config();
    const r = await withNats(c, async (nats) => {
      const retention = new RetentionBook();
      const index = await rebuildIndex(nats.bus, retention);
      if (o.site && !index.sites().includes(o.site) && !retention.sites().includes(o.site)) throw new MedvaultError(codes.CONFIG_INVALID, `--site ${o.site}: this controller holds no off-site copy or needs list of that site`);
      const key = loadSigningKey(c.state_dir);
      const audit = await drainedTrail(c, nats);
      const holds = new HoldBook({ kv: await nats.bucket(HOLDS_BUCKET, { history: 20 }), audit, clock: Date.now });
      const log = createLog('silent');
      const scrub = new Scrub({ bus: nats.bus, index, key, clock: Date.now, log, rate: c.offsite.scrub_rate });
      const pruner = new Pruner({ bus: nats.bus, index, retention, holds: () => holds.list(), scrub, ...offsitePolicy(c.offsite.retention), key, clock: Date.now, log, audit });
      return pruner.run({ ...(o.site ? { sites: [o.site] } : {}), dryRun: o.dryRun ?? false, actor: operator() });
    });
    if (o.json) print(r);
    else {
      for (const p of r.plans) process.stdout.write(`${formatPlan(p).join('\n')}\n`);
      process.stdout.write(r.dryRun ? `dry run: nothing deleted\n` : `pruned ${r.deleted} off-site copies (${r.bytes} bytes); records ${r.records.join(', ') || 'none'}\n`);
    }
  });

program
  .command('config')
  .description('the controller configuration')
  .command('check')
  .description('validate the configuration: every mistake with file, line, key and what was expected (exit 2)')
  .action(() => {
    const { config: c, issues } = checkConfig(program.opts() as ConfigOverrides);
    if (!c) throw new MedvaultError(codes.CONFIG_INVALID, issues.map(formatIssue).join('\n'));
    process.stdout.write(`${c.file ?? 'command line'}: OK: state ${c.state_dir}, NATS ${c.nats.servers.join(',')} (replicas ${c.nats.replicas}), HTTP ${c.http.host}:${c.http.port}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = err instanceof MedvaultError ? (exitCodes[err.code] ?? 1) : 1;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`medvault-controller: ${message}\n`);
  process.exitCode = code;
}
