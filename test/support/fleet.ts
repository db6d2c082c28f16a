/**
 * A small real fleet for the demo and the end-to-end tests: a nats-server, a controller with a
 * technician (password + TOTP), and one clinic appliance (agent config, repository; its daemon
 * is started with startAgent()), each a real process started from the built CLIs, in one folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { TOTP } from 'otpauth';
import { nkeyAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { natsTls } from '@medvault/protocol';
import { NatsServer, freePort } from './nats-server.js';
import { makeCa } from './secure-nats.js';
import { BIN, Daemon, run, type RunResult } from './procs.js';

export const PASSWORD = 'correct horse battery staple 42';

/** Throws with the program's output unless it exited 0; returns its --json answer. */
export function must(r: RunResult, what: string): any {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr || r.stdout}`.slice(0, 4000));
  return r.json;
}

export interface FleetOptions {
  ws: string;
  site: string;
  /** The clinic's record store folder. */
  store: string;
  /** Folders restore orders may write into. */
  restoreRoots: string[];
  /** Extra TOML lines for the store, e.g. `continuous = true`. */
  storeLines?: string[];
  /** Extra TOML tables for the agent, appended last, e.g. `[replication]` lines. */
  agentLines?: string[];
  /** Extra TOML lines at the end of controller.toml, e.g. `[incidents]` and `notify = [...]`. */
  controllerLines?: string[];
}

export class Fleet {
  readonly daemons: Daemon[] = [];
  agentDaemon: Daemon | undefined;
  private lastTotpStep = -1;

  private constructor(
    readonly opts: FleetOptions,
    readonly nats: NatsServer,
    readonly url: string,
    readonly controllerKey: string,
    readonly totpSecret: string,
    readonly config: string,
  ) {}

  get site(): string {
    return this.opts.site;
  }

  static async start(opts: FleetOptions): Promise<Fleet> {
    const { ws } = opts;
    // The secure setup, as an operator makes it: a private CA (deploy/make-ca.sh), the controller's
    // keys, the site enrolled (its nkey and bundle), nats-server configured by the controller (TLS
    // required, per-site permissions); everyone connects over TLS with their own nkey.
    const tls = makeCa(ws);
    const port = await freePort();
    const natsUrl = `tls://127.0.0.1:${port}`;
    const ctlConfig = join(ws, 'controller.toml');
    writeFileSync(
      ctlConfig,
      [
        `state_dir = ${JSON.stringify(join(ws, 'controller'))}`,
        `[nats]`, `servers = ["${natsUrl}"]`, `nkey_file = ${JSON.stringify(join(ws, 'controller', 'controller.nk'))}`, `ca_file = ${JSON.stringify(tls.caFile)}`,
        `[nats_server]`, `host = "127.0.0.1"`, `port = ${port}`, `store_dir = ${JSON.stringify(join(ws, 'nats'))}`,
        `cert_file = ${JSON.stringify(tls.certFile)}`, `key_file = ${JSON.stringify(tls.keyFile)}`, ...(opts.controllerLines ?? []), '',
      ].join('\n'),
    );
    const ctl = ['--config', ctlConfig];
    must(await run(BIN.controller, ['init', ...ctl]), 'medvault-controller init');
    const bundle = join(ws, 'enrolment', opts.site);
    must(await run(BIN.controller, ['site', 'add', opts.site, '--out', bundle, '--json', ...ctl]), 'medvault-controller site add');
    must(await run(BIN.controller, ['nats-config', '--out', join(ws, 'nats-server.conf'), ...ctl]), 'medvault-controller nats-config');
    const nats = await NatsServer.start({ port, storeDir: join(ws, 'nats'), config: join(ws, 'nats-server.conf') });
    const daemons: Daemon[] = [];
    try {
      const controllerKey = must(await run(BIN.controller, ['key', ...ctl, '--json']), 'medvault-controller key').publicKey as string;
      const user = must(await run(BIN.controller, ['user', 'add', 'tech', '--role', 'technician', '--password-stdin', ...ctl, '--json'], { input: PASSWORD }), 'medvault-controller user add');
      const controller = new Daemon('controller', BIN.controller, ['serve', ...ctl, '--port', '0']);
      daemons.push(controller);
      const url = (await controller.waitFor(/"url":"(http:\/\/[^"]+)"/))[1]!;

      const recovery = must(await run(BIN.agent, ['recovery-key', 'generate', '--out', join(ws, 'it-offline', 'recovery.key'), '--json']), 'recovery-key generate');
      const config = join(ws, 'appliance', 'agent.toml');
      mkdirSync(join(ws, 'appliance'), { recursive: true });
      writeFileSync(
        config,
        [
          `site = "${opts.site}"`, `state_dir = "state"`, `key_file = "local.key"`,
          `recovery_public_key = "${recovery.publicKey}"`, `controller_public_key = "${controllerKey}"`,
          `restore_roots = ${JSON.stringify(opts.restoreRoots)}`,
          `[nats]`, `servers = ["${natsUrl}"]`, `nkey_file = ${JSON.stringify(join(bundle, 'site.nk'))}`, `ca_file = ${JSON.stringify(join(bundle, 'ca.pem'))}`,
          `[[disks]]`, `path = ${JSON.stringify(join(ws, 'disk1', 'medvault'))}`,
          `[[stores]]`, `name = "records"`, `type = "files"`, `path = ${JSON.stringify(opts.store)}`, ...(opts.storeLines ?? []), ...(opts.agentLines ?? []), '',
        ].join('\n'),
      );
      const fleet = new Fleet(opts, nats, url, controllerKey, user.totpSecret, config);
      fleet.daemons.push(...daemons);
      must(await fleet.agent('init'), 'medvault-agent init');
      return fleet;
    } catch (err) {
      for (const d of daemons) await d.stop();
      await nats.stop();
      throw err;
    }
  }

  /** The NATS URL clients use (TLS). */
  get natsUrl(): string {
    return `tls://127.0.0.1:${this.nats.port}`;
  }

  /**
   * Options for a test's own NATS connection: TLS against the fleet's private CA, as the controller
   * (its nkey may do everything; an agent's may not), e.g. `connect(fleet.natsOptions())`.
   */
  natsOptions(): ConnectionOptions {
    const ws = this.opts.ws;
    return {
      servers: this.natsUrl,
      tls: natsTls(join(ws, 'tls', 'ca.pem')),
      authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(join(ws, 'controller', 'controller.nk'), 'utf8').trim())),
    };
  }

  /** Runs `medvault-agent --config … <args> --json`. */
  agent(...args: string[]): Promise<RunResult> {
    return run(BIN.agent, ['--config', this.config, ...args, '--json']);
  }

  /** Starts the agent daemon (`medvault-agent run`), with `env` added to its environment (e.g. MEDVAULT_FAULTS). */
  startAgent(env: NodeJS.ProcessEnv = {}): Daemon {
    this.agentDaemon = new Daemon('agent', BIN.agent, ['--config', this.config, 'run'], env);
    this.daemons.push(this.agentDaemon);
    return this.agentDaemon;
  }

  /** Starts the agent daemon (with `env`, as startAgent) and waits until it says it is running. */
  async runAgent(env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
    const agent = this.startAgent(env);
    await agent.waitFor(/agent running/);
    return agent;
  }

  get session(): NodeJS.ProcessEnv {
    return { MEDVAULT_SESSION: join(this.opts.ws, 'technician', 'session.json') };
  }

  /** A TOTP code of a step not used yet (waits for the next step if the last was used): the controller refuses a replayed code. */
  async freshTotp(): Promise<string> {
    let step = Math.floor(Date.now() / 30_000);
    while (step <= this.lastTotpStep) {
      await new Promise((r) => setTimeout(r, 500));
      step = Math.floor(Date.now() / 30_000);
    }
    this.lastTotpStep = step;
    return new TOTP({ secret: this.totpSecret }).generate({ timestamp: step * 30_000 });
  }

  /** Logs the technician in with password and a fresh TOTP code. */
  async login(): Promise<void> {
    must(await run(BIN.medvault, ['login', '--url', this.url, '--user', 'tech', '--json'], { env: { ...this.session, MEDVAULT_PASSWORD: PASSWORD, MEDVAULT_TOTP: await this.freshTotp() } }), 'medvault login');
  }

  /** GETs `path` of the controller's HTTP API with the saved session; throws naming the status unless it is 2xx. */
  async api(path: string): Promise<any> {
    const s = JSON.parse(readFileSync(this.session.MEDVAULT_SESSION!, 'utf8')) as { token: string };
    const r = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  /** Runs the technician's `medvault <args> --json` with the saved session. */
  medvault(args: string[], timeoutMs = 300_000): Promise<RunResult> {
    return run(BIN.medvault, [...args, '--json'], { env: this.session, timeoutMs });
  }

  output(): string {
    return this.daemons.map((d) => `--- ${d.label} output (last lines) ---\n${d.output.split('\n').slice(-15).join('\n')}`).join('\n');
  }

  /** Stops every process (agent first) and the NATS server; leaves the workspace. */
  async stop(): Promise<void> {
    for (const d of [...this.daemons].reverse()) await d.stop();
    await this.nats.stop();
  }
}
