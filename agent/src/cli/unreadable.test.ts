/**
 * An unreadable record is reported and the snapshot marked partial (exit 3), never recorded as
 * deleted. Made for real: the built CLI runs as root without the capabilities that pass over file
 * modes (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), over a store that holds one file
 * of mode 000. Root keeps its own folders, so the test runs wherever the clone is, even in a
 * folder nobody else may enter.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../repo/testing.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(root, 'agent', 'dist', 'bundle', 'main.js'); // what the launcher runs
const canDrop = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
const NO_DAC = '-dac_override,-dac_read_search';

function cli(dir: string, config: string) {
  return (...args: string[]) =>
    spawnSync('setpriv', [`--bounding-set=${NO_DAC}`, `--inh-caps=${NO_DAC}`, process.execPath, main, '--config', config, '--json', ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } });
}

describe.skipIf(!canDrop)('unreadable records', () => {
  it('are named, the snapshot is partial (exit 3), and the readable records are in it', async () => {
    const dir = await tempDir('mv-unreadable-');
    chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    mkdirSync(join(src, 'fhir'), { recursive: true });
    writeFileSync(join(src, 'fhir', 'ok.json'), '{"resourceType":"Patient"}');
    writeFileSync(join(src, 'fhir', 'locked.json'), '{"secret":true}');
    chmodSync(join(src, 'fhir', 'locked.json'), 0o000); // without DAC override, not even root reads it
    for (const d of ['state', 'disk1']) mkdirSync(join(dir, d));
    const rk = spawnSync(process.execPath, [main, 'recovery-key', 'generate', '--out', join(dir, 'recovery.key'), '--json'], { encoding: 'utf8' });
    const publicKey = JSON.parse(rk.stdout.trim()).publicKey as string;
    const config = join(dir, 'agent.toml');
    writeFileSync(config, [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "state/local.key"`, `recovery_public_key = "${publicKey}"`, `[[disks]]`, `path = "disk1"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'));
    const asUser = cli(dir, config);
    expect(asUser('init').status).toBe(0);
    const r = asUser('backup', 'records');
    expect(r.status, r.stdout + r.stderr).toBe(3);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ ok: false, partial: true });
    expect(JSON.stringify(out)).toMatch(/locked\.json/);
    const ls = JSON.parse(asUser('ls', 'latest', 'fhir').stdout.trim());
    expect(JSON.stringify(ls)).toContain('ok.json');
  });

  it('a record that becomes unreadable keeps its previous version in the new snapshot (never recorded as deleted)', async () => {
    const dir = await tempDir('mv-unreadable2-');
    chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'chart.json'), '{"resourceType":"Patient","v":1}');
    chmodSync(join(src, 'chart.json'), 0o644);
    for (const d of ['state', 'disk1']) mkdirSync(join(dir, d));
    const rk = spawnSync(process.execPath, [main, 'recovery-key', 'generate', '--out', join(dir, 'recovery.key'), '--json'], { encoding: 'utf8' });
    const config = join(dir, 'agent.toml');
    writeFileSync(config, [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "state/local.key"`, `recovery_public_key = "${JSON.parse(rk.stdout.trim()).publicKey}"`, `[[disks]]`, `path = "disk1"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'));
    const asUser = cli(dir, config);
    expect(asUser('init').status).toBe(0);
    expect(asUser('backup', 'records').status).toBe(0);
    chmodSync(join(src, 'chart.json'), 0o000);
    expect(asUser('backup', 'records').status).toBe(3);
    const target = join(dir, 'out');
    mkdirSync(target);
    expect(asUser('restore', 'latest', '--target', join(target, 'r')).status).toBe(0);
    expect(readFileSync(join(target, 'r', 'chart.json'), 'utf8')).toBe('{"resourceType":"Patient","v":1}');
  });
});
