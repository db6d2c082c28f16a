#!/usr/bin/env node
/**
 * medvault-controller: the composition root. Parses the command line, loads the configuration,
 * opens NATS and the signing key, starts the app. The only place errors become exit codes:
 * 0 ok, 1 unexpected, 2 bad configuration or input, 3 key problem, 4 NATS unreachable, 5 conflict.
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
import { openNats } from './nats.js';
import { initSigningKey, loadSigningKey } from './signing-key.js';

const exitCodes: Partial<Record<string, number>> = {
  [codes.CONFIG_INVALID]: 2,
  [codes.MESSAGE_INVALID]: 2,
  [codes.KEY_INVALID]: 3,
  [codes.TRANSPORT_FAILED]: 4,
  [codes.CONFLICT]: 5,
};

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
    print({ keyFile: file, created, kid: key.kid, publicKey: exportPublicKey(key.publicKey) });
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
    const key = loadSigningKey(c.state_dir);
    const nats = await openNats({ servers: c.nats.servers, ...(c.nats.creds ? { creds: c.nats.creds } : {}) });
    const app = await startApp({ nats, key, clock: Date.now, config: c, log });
    log.info({ kid: key.kid, publicKey: exportPublicKey(key.publicKey), nats: c.nats.servers }, 'controller started');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    log.info('stopping');
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
    const nats = await openNats({ servers: c.nats.servers, ...(c.nats.creds ? { creds: c.nats.creds } : {}) });
    try {
      const users = new UserStore(await nats.bucket(USERS_BUCKET, { history: 5 }));
      const u = await users.add(name, o.role, password, Date.now());
      const uri = totpUri(u.totpSecret, u.name);
      if (o.json) print({ user: u.name, role: u.role, totpSecret: u.totpSecret, otpauthUri: uri });
      else {
        process.stdout.write(`user ${u.name} (${u.role}) added\nTOTP secret: ${u.totpSecret}\n${uri}\n`);
        process.stdout.write(await QRCode.toString(uri, { type: 'terminal', small: true }));
      }
    } finally {
      await nats.close();
    }
  });

user
  .command('list')
  .description('list accounts')
  .option('--json', 'print a JSON array')
  .action(async (o: { json?: boolean }) => {
    const c = config();
    const nats = await openNats({ servers: c.nats.servers, ...(c.nats.creds ? { creds: c.nats.creds } : {}) });
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = err instanceof MedvaultError ? (exitCodes[err.code] ?? 1) : 1;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`medvault-controller: ${message}\n`);
  process.exitCode = code;
}
