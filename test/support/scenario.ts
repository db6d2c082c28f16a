/**
 * The main job, end to end, as a clinic and central IT would run it: a NATS server, a controller,
 * an agent on a copy of the record store; back up, wait for the off-site receipts, damage the
 * records, have a technician restore them by an MFA-authenticated order, verify byte for byte.
 * `npm run demo` and the end-to-end test both run exactly this.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOTP } from 'otpauth';
import { NatsServer } from './nats-server.js';
import { BIN, Daemon, run, until, type RunResult } from './procs.js';
import { checkManifest, diffFingerprints, fingerprint, generateRecords, sampleRecords } from './records.js';

export interface ScenarioOptions {
  /** Record store to copy, or 'generate'; default: the shared samples, else a generated store. */
  records?: string;
  keep?: boolean;
  say?: (line: string) => void;
}

export interface ScenarioSummary {
  ok: boolean;
  records: string;
  files: number;
  verified: number;
  bytes: number;
  damaged: { deleted: number; corrupted: number };
  snapshot: string;
  manifest: { checked: number; bad: number } | null;
  seconds: Record<string, number>;
  workspace?: string;
  error?: string;
}

const SITE = 'clinic-demo';
const PASSWORD = 'correct horse battery staple 42';

function must(r: RunResult, what: string): any {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr || r.stdout}`.slice(0, 4000));
  return r.json;
}

export async function runScenario(opts: ScenarioOptions = {}): Promise<ScenarioSummary> {
  const say = opts.say ?? (() => {});
  const ws = mkdtempSync(join(tmpdir(), 'medvault-demo-'));
  const seconds: Record<string, number> = {};
  let t0 = Date.now();
  const lap = (name: string) => {
    seconds[name] = Math.round((Date.now() - t0) / 10) / 100;
    t0 = Date.now();
  };
  const daemons: Daemon[] = [];
  let nats: NatsServer | undefined;
  const summary: ScenarioSummary = {
    ok: false, records: '', files: 0, verified: 0, bytes: 0, damaged: { deleted: 0, corrupted: 0 }, snapshot: '',
    manifest: null, seconds,
  };
  try {
    // 1. The clinic's record store: a private copy, so the demo can damage it.
    const source = opts.records === 'generate' ? undefined : (opts.records ?? sampleRecords());
    const store = join(ws, 'clinic', 'records');
    mkdirSync(store, { recursive: true });
    if (source) {
      cpSync(source, store, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      summary.records = source;
    } else {
      generateRecords(store);
      summary.records = 'generated';
    }
    const before = fingerprint(store);
    say(`record store: ${summary.records} (${[...before.values()].filter((v) => v.startsWith("file:")).length} files) at ${store}`);
    lap('prepare');

    // 2. Central site: NATS with JetStream, the controller, a technician with TOTP.
    nats = await NatsServer.start({ storeDir: join(ws, 'nats') });
    const ctl = ['--nats', nats.url, '--state-dir', join(ws, 'controller')];
    must(await run(BIN.controller, ['init', ...ctl]), 'medvault-controller init');
    const controllerKey = must(await run(BIN.controller, ['key', ...ctl, '--json']), 'medvault-controller key').publicKey as string;
    const user = must(await run(BIN.controller, ['user', 'add', 'tech', '--role', 'technician', '--password-stdin', ...ctl, '--json'], { input: PASSWORD }), 'medvault-controller user add');
    const controller = new Daemon('controller', BIN.controller, ['serve', ...ctl, '--port', '0']);
    daemons.push(controller);
    const url = (await controller.waitFor(/"url":"(http:\/\/[^"]+)"/))[1]!;
    say(`controller up at ${url}, NATS at ${nats.url}`);
    lap('controller');

    // 3. The clinic appliance: recovery key, config, repository on its backup disk, the daemon.
    const recovery = must(await run(BIN.agent, ['recovery-key', 'generate', '--out', join(ws, 'it-offline', 'recovery.key'), '--json']), 'recovery-key generate');
    const config = join(ws, 'appliance', 'agent.toml');
    mkdirSync(join(ws, 'appliance'), { recursive: true });
    writeFileSync(
      config,
      [
        `site = "${SITE}"`, `state_dir = "state"`, `key_file = "local.key"`,
        `recovery_public_key = "${recovery.publicKey}"`, `controller_public_key = "${controllerKey}"`,
        `restore_roots = [${JSON.stringify(join(ws, 'clinic'))}]`,
        `[nats]`, `servers = ["${nats.url}"]`,
        `[[disks]]`, `path = ${JSON.stringify(join(ws, 'disk1', 'medvault'))}`,
        `[[stores]]`, `name = "records"`, `type = "files"`, `path = ${JSON.stringify(store)}`, '',
      ].join('\n'),
    );
    const agent = (...args: string[]) => run(BIN.agent, ['--config', config, ...args, '--json']);
    must(await agent('init'), 'medvault-agent init');
    const daemon = new Daemon('agent', BIN.agent, ['--config', config, 'run']);
    daemons.push(daemon);
    lap('agent');

    // 4. Back up, then wait until the controller has receipted every object of the snapshot.
    const backup = must(await agent('backup', 'records'), 'medvault-agent backup records');
    const first = backup.results[0];
    summary.snapshot = first.snapshot;
    say(`backed up: snapshot ${summary.snapshot.slice(0, 12)}: ${first.summary.files} files, ${(first.summary.bytes / 1e6).toFixed(1)} MB, stored ${(first.summary.storedBytes / 1e6).toFixed(1)} MB`);
    lap('backup');
    await until('the off-site receipts', async () => {
      const list = must(await agent('snapshots'), 'medvault-agent snapshots');
      const row = (list.snapshots ?? list).find((s: any) => s.hash === summary.snapshot || s.id === summary.snapshot);
      return row?.offsite === 'both' ? row : undefined;
    }, 90_000, 300);
    say('off site: every object of the snapshot has a signed receipt from the controller');
    lap('offsite');

    // 5. Disaster: delete a folder and some files, corrupt others.
    const files = [...before].filter(([, v]) => v.startsWith('file:')).map(([k]) => Buffer.from(k, 'binary'));
    const victims = files.filter((_, i) => i % 7 === 3);
    const scope = new Set<string>();
    for (const [i, rel] of victims.entries()) {
      const abs = Buffer.concat([Buffer.from(`${store}/`), rel]);
      scope.add(rel.toString('utf8').split('/').length > 1 ? rel.toString('utf8').split('/')[0]! : rel.toString('utf8'));
      if (i % 2 === 0) {
        rmSync(abs);
        summary.damaged.deleted++;
      } else {
        writeFileSync(abs, randomBytes(Math.max(16, Math.min(4096, statSync(abs).size))));
        summary.damaged.corrupted++;
      }
    }
    const folder = readdirSync(store).find((n) => statSync(join(store, n)).isDirectory() && !n.startsWith('LICENSES'));
    if (folder) {
      summary.damaged.deleted += [...before.keys()].filter((k) => k.startsWith(`${folder}/`) && before.get(k)!.startsWith('file:') && existsSync(join(store, Buffer.from(k, 'binary').toString()))).length;
      rmSync(join(store, folder), { recursive: true, force: true });
      scope.add(folder);
    }
    say(`damaged: ${summary.damaged.deleted} files deleted (with folder ${folder}), ${summary.damaged.corrupted} corrupted`);
    lap('damage');

    // 6. The technician scopes the loss (the damaged top-level folders), logs in with password +
    //    TOTP and orders their restore remotely, in place.
    const session = { MEDVAULT_SESSION: join(ws, 'technician', 'session.json') };
    const totp = new TOTP({ secret: user.totpSecret });
    must(await run(BIN.medvault, ['login', '--url', url, '--user', 'tech', '--json'], { env: { ...session, MEDVAULT_PASSWORD: PASSWORD, MEDVAULT_TOTP: totp.generate() } }), 'medvault login');
    const restored = must(
      await run(BIN.medvault, ['restore', '--site', SITE, '--snapshot', 'latest', ...[...scope].sort().flatMap((p) => ['--path', p]), '--target', store, '--overwrite', '--json'], { env: session, timeoutMs: 300_000 }),
      'medvault restore',
    );
    summary.files = restored.result?.files ?? restored.files ?? 0;
    summary.verified = restored.result?.verified ?? restored.verified ?? 0;
    summary.bytes = restored.result?.bytes ?? restored.bytes ?? 0;
    say(`restored ${[...scope].sort().join(', ')} by order ${restored.orderId ?? restored.id}: ${summary.files} files, ${summary.verified} verified by the agent`);
    lap('restore');

    // 7. Independent check: every entry byte for byte as before, and the shipped manifest.
    const diff = diffFingerprints(before, fingerprint(store));
    if (existsSync(join(store, 'MANIFEST.sha256'))) {
      const m = checkManifest(store);
      summary.manifest = { checked: m.checked, bad: m.bad.length };
    }
    summary.ok = diff.length === 0 && summary.manifest?.bad === 0 && summary.verified === summary.files && summary.files > 0;
    if (diff.length > 0) summary.error = `${diff.length} entries differ after restore: ${diff.slice(0, 5).join(', ')}`;
    say(summary.ok ? `verified: all ${before.size} entries identical to before, MANIFEST.sha256 ${summary.manifest?.checked} of ${summary.manifest?.checked} match` : `NOT OK: ${summary.error ?? 'verification counts differ'}`);
    lap('verify');
  } catch (err) {
    summary.error = (err as Error).message;
    for (const d of daemons) if (d.output) say(`--- ${d.label} output (last lines) ---\n${d.output.split('\n').slice(-15).join('\n')}`);
  } finally {
    for (const d of daemons.reverse()) await d.stop();
    await nats?.stop();
    if (opts.keep) summary.workspace = ws;
    else rmSync(ws, { recursive: true, force: true });
  }
  return summary;
}
