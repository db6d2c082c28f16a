/**
 * An unreadable record is reported and the snapshot marked partial (exit 3), never recorded as
 * deleted. Made for real: the built CLI runs as an unprivileged user (setpriv) over a store that
 * holds one file it may not read.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../repo/testing.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(root, 'agent', 'dist', 'bundle', 'main.js'); // what the launcher runs
const canDrop = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
const NOBODY = 65534;

describe.skipIf(!canDrop)('unreadable records', () => {
  it('are named, the snapshot is partial (exit 3), and the readable records are in it', async () => {
    const dir = await tempDir('mv-unreadable-');
    chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    mkdirSync(join(src, 'fhir'), { recursive: true });
    writeFileSync(join(src, 'fhir', 'ok.json'), '{"resourceType":"Patient"}');
    writeFileSync(join(src, 'fhir', 'locked.json'), '{"secret":true}');
    chmodSync(join(src, 'fhir', 'locked.json'), 0o600); // root's: nobody may not read it
    for (const d of ['state', 'disk1']) {
      mkdirSync(join(dir, d));
      chownSync(join(dir, d), NOBODY, NOBODY);
    }
    const rk = spawnSync(process.execPath, [main, 'recovery-key', 'generate', '--out', join(dir, 'recovery.key'), '--json'], { encoding: 'utf8' });
    const publicKey = JSON.parse(rk.stdout.trim()).publicKey as string;
    const config = join(dir, 'agent.toml');
    writeFileSync(config, [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "state/local.key"`, `recovery_public_key = "${publicKey}"`, `[[disks]]`, `path = "disk1"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'));
    const asNobody = (...args: string[]) =>
      spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, main, '--config', config, '--json', ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } });
    expect(asNobody('init').status).toBe(0);
    const r = asNobody('backup', 'records');
    expect(r.status, r.stdout + r.stderr).toBe(3);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ ok: false, partial: true });
    expect(JSON.stringify(out)).toMatch(/locked\.json/);
    const ls = JSON.parse(asNobody('ls', 'latest', 'fhir').stdout.trim());
    expect(JSON.stringify(ls)).toContain('ok.json');
  });

  it('a record that becomes unreadable keeps its previous version in the new snapshot (never recorded as deleted)', async () => {
    const dir = await tempDir('mv-unreadable2-');
    chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'chart.json'), '{"resourceType":"Patient","v":1}');
    chmodSync(join(src, 'chart.json'), 0o644);
    for (const d of ['state', 'disk1']) {
      mkdirSync(join(dir, d));
      chownSync(join(dir, d), NOBODY, NOBODY);
    }
    const rk = spawnSync(process.execPath, [main, 'recovery-key', 'generate', '--out', join(dir, 'recovery.key'), '--json'], { encoding: 'utf8' });
    const config = join(dir, 'agent.toml');
    writeFileSync(config, [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "state/local.key"`, `recovery_public_key = "${JSON.parse(rk.stdout.trim()).publicKey}"`, `[[disks]]`, `path = "disk1"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'));
    const asNobody = (...args: string[]) =>
      spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, main, '--config', config, '--json', ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } });
    expect(asNobody('init').status).toBe(0);
    expect(asNobody('backup', 'records').status).toBe(0);
    chmodSync(join(src, 'chart.json'), 0o600);
    expect(asNobody('backup', 'records').status).toBe(3);
    const target = join(dir, 'out');
    mkdirSync(target);
    chownSync(target, NOBODY, NOBODY);
    expect(asNobody('restore', 'latest', '--target', join(target, 'r')).status).toBe(0);
    expect(readFileSync(join(target, 'r', 'chart.json'), 'utf8')).toBe('{"resourceType":"Patient","v":1}');
  });
});
