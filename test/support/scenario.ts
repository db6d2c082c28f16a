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
import { Fleet, must } from './fleet.js';
import { until } from './procs.js';
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

export async function runScenario(opts: ScenarioOptions = {}): Promise<ScenarioSummary> {
  const say = opts.say ?? (() => {});
  const ws = mkdtempSync(join(tmpdir(), 'medvault-demo-'));
  const seconds: Record<string, number> = {};
  let t0 = Date.now();
  const lap = (name: string) => {
    seconds[name] = Math.round((Date.now() - t0) / 10) / 100;
    t0 = Date.now();
  };
  let fleet: Fleet | undefined;
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

    // 2. Central site (NATS with JetStream, the controller, a technician with TOTP) and the
    //    clinic appliance (recovery key, config, repository on its backup disk, the daemon).
    fleet = await Fleet.start({ ws, site: SITE, store, restoreRoots: [join(ws, 'clinic')] });
    const agent = (...args: string[]) => fleet!.agent(...args);
    say(`controller up at ${fleet.url}, NATS at ${fleet.natsUrl} (TLS, private CA; site ${SITE} enrolled with its own nkey)`);
    lap('start');

    // 4. Back up, then wait until the controller has receipted every object of the snapshot.
    const backup = must(await agent('backup', 'records', '--full'), 'medvault-agent backup records --full');
    fleet.startAgent();
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

    // 6. The technician scopes the loss (the damaged top-level folders), picks the backup from
    //    before it, logs in with password + TOTP and orders the restore remotely, in place.
    await fleet.login();
    const restored = must(
      await fleet.medvault(['restore', '--site', SITE, '--snapshot', summary.snapshot, ...[...scope].sort().flatMap((p) => ['--path', p]), '--target', store, '--overwrite']),
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
    if (fleet) say(fleet.output());
  } finally {
    await fleet?.stop();
    if (opts.keep) summary.workspace = ws;
    else rmSync(ws, { recursive: true, force: true });
  }
  return summary;
}
