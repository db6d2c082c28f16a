/**
 * Install and upgrade: deploy/install.sh into a scratch root, twice (the second run changes
 * nothing and keeps what the admin edited), the installed release runs its config check, upgrades
 * switch /opt/medvault/current and keep one previous release; the installed units pass
 * `systemd-analyze verify` and score under 3.0 with `systemd-analyze security`. Repositories written
 * by format version 1 (a committed fixture) stay readable; an unknown future version is refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, run } from '../support/procs.js';

const work = mkdtempSync(join(tmpdir(), 'mv-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function install(root: string, ...args: string[]): string {
  return execFileSync('bash', [join(ROOT, 'deploy', 'install.sh'), '--root', root, ...args], { encoding: 'utf8' });
}

/** Every path under `root` (not inside releases) with its type, mode, link target or content hash. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const rel = `/${relative(root, p)}`;
      const s = lstatSync(p);
      const mode = (s.mode & 0o7777).toString(8);
      if (s.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
      else if (s.isDirectory()) {
        out[rel] = `dir ${mode}`;
        if (!/^\/opt\/medvault\/releases\/[^/]+$/.test(rel)) walk(p);
      } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
    }
  };
  walk(root);
  return out;
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('deploy/install.sh into a scratch root', () => {
  const root = join(work, 'root');

  it('installs user plan, folders with their modes, release, units, wrappers and config skeletons, and a second run changes nothing', () => {
    const first = install(root, '--component', 'all', '--version', '0.1.0-test1');
    expect(first).toMatch(/created the local key/);
    const before = tree(root);
    expect(before).toMatchObject({
      '/etc/medvault': 'dir 750',
      '/etc/medvault/credentials': 'dir 700',
      '/var/lib/medvault': 'dir 700',
      '/var/lib/medvault-controller': 'dir 700',
      '/srv/restore': 'dir 750',
      '/opt/medvault/current': 'link releases/0.1.0-test1',
      '/opt/medvault/releases/0.1.0-test1': 'dir 755',
    });
    expect(before['/etc/medvault/agent.toml']).toMatch(/^file 640 /);
    expect(before['/etc/medvault/controller.toml']).toMatch(/^file 640 /);
    expect(before['/etc/medvault/credentials/local.key']).toMatch(/^file 600 /);
    expect(readFileSync(join(root, 'etc/medvault/credentials/local.key')).length).toBe(32);
    for (const u of ['medvault-agent', 'medvault-controller']) {
      expect(before[`/etc/systemd/system/${u}.service`]).toMatch(/^file 644 /);
      expect(readFileSync(join(root, `etc/systemd/system/${u}.service`), 'utf8')).toBe(readFileSync(join(ROOT, 'systemd', `${u}.service`), 'utf8'));
    }
    for (const w of ['medvault-agent', 'medvault-controller', 'medvault']) expect(before[`/usr/local/bin/${w}`]).toMatch(/^file 755 /);
    const plan = readFileSync(join(root, 'var/lib/medvault-install/plan'), 'utf8');
    expect(plan).toContain('useradd --system --gid medvault --home-dir /var/lib/medvault --no-create-home --shell /usr/sbin/nologin');
    expect(plan).toContain('chown medvault:medvault /var/lib/medvault\n');
    expect(plan).toContain('chown root:medvault /etc/medvault/agent.toml\n');
    expect(plan).toContain('systemctl enable medvault-agent.service\n');

    // The admin fills in the configuration; a second run keeps it, and the key, and changes nothing else.
    const edited = readFileSync(join(root, 'etc/medvault/agent.toml'), 'utf8').replace('site = "change-me"', 'site = "clinic-a"');
    writeFileSync(join(root, 'etc/medvault/agent.toml'), edited);
    chmodSync(join(root, 'etc/medvault/agent.toml'), 0o640);
    const edit = tree(root);
    const second = install(root, '--component', 'all', '--version', '0.1.0-test1');
    expect(second).toMatch(/kept \/etc\/medvault\/agent\.toml/);
    expect(second).not.toMatch(/created the local key/);
    expect(tree(root)).toEqual(edit);
    expect(readFileSync(join(root, 'var/lib/medvault-install/plan'), 'utf8')).toBe(plan);
  }, 60_000);

  it('the installed release runs (the agent through its launcher): config check names each placeholder left in the skeleton', async () => {
    // through the launcher, as the unit's ExecStartPre= runs it
    const r = spawnSync(join(root, 'opt/medvault/current/agent/bin/medvault-agent'), ['--config', join(root, 'etc/medvault/agent.toml'), 'config', 'check'], { encoding: 'utf8', env: { ...process.env, MEDVAULT_CREDENTIALS_SOURCE: join(root, 'etc/medvault/credentials') } });
    expect(r.status, r.stderr).toBe(2);
    const file = join(root, 'etc/medvault/agent.toml');
    expect(r.stderr).toContain(`${file}:7: recovery_public_key: expected a 32-byte key as 43 base64url characters, got "CHANGE"`);
    expect(r.stderr).toContain(`${file}:8: controller_public_key: expected a 32-byte key as 43 base64url characters, got "CHANGE"`);
    const ctl = await run(join(root, 'opt/medvault/current/controller/dist/main.js'), ['--config', join(root, 'etc/medvault/controller.toml'), 'config', 'check']);
    expect(ctl.code, ctl.stderr).toBe(0);
  });

  it('upgrades switch current, keep the previous release for a rollback, and drop older ones', () => {
    install(root, '--component', 'all', '--version', '0.1.0-test2');
    expect(readlinkSync(join(root, 'opt/medvault/current'))).toBe('releases/0.1.0-test2');
    expect(readlinkSync(join(root, 'opt/medvault/previous'))).toBe('releases/0.1.0-test1');
    install(root, '--component', 'all', '--version', '0.1.0-test3');
    expect(readdirSync(join(root, 'opt/medvault/releases')).sort()).toEqual(['0.1.0-test2', '0.1.0-test3']);
    expect(readFileSync(join(root, 'etc/medvault/agent.toml'), 'utf8')).toContain('site = "clinic-a"');
  }, 60_000);

  it.skipIf(!hasSystemdAnalyze)('the installed units pass systemd-analyze verify and score under 3.0', () => {
    for (const u of ['medvault-agent', 'medvault-controller']) {
      const unit = join(root, 'etc/systemd/system', `${u}.service`);
      const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      expect(verify.status, verify.stderr).toBe(0);
      expect(verify.stderr.trim()).toBe('');
      const sec = spawnSync('systemd-analyze', ['security', '--offline=yes', unit], { encoding: 'utf8' });
      const score = Number(/Overall exposure level for .*: ([0-9.]+)/.exec(sec.stdout)?.[1]);
      expect(score, sec.stdout.slice(-500)).toBeLessThan(3.0);
      const text = readFileSync(unit, 'utf8');
      for (const line of ['Type=notify', 'NotifyAccess=main', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'SystemCallFilter=@system-service', 'StateDirectory=', 'ConfigurationDirectory=medvault', 'LoadCredential=']) expect(text).toContain(line);
      expect(text).toMatch(/^WatchdogSec=\d+$/m);
    }
  });
});

describe('upgrades keep old repositories readable (format versions)', () => {
  const fixture = join(ROOT, 'agent', 'test-fixtures', 'repo-v1');
  const magics = ['MVCF', 'MVKY', 'MVPK', 'MVIX', 'MVSN'];

  function appliance(name: string): { config: string; repo: string } {
    const dir = join(work, name);
    cpSync(join(fixture, 'repo'), join(dir, 'repo'), { recursive: true });
    cpSync(join(fixture, 'local.key'), join(dir, 'local.key'));
    chmodSync(join(dir, 'local.key'), 0o600);
    const config = join(dir, 'agent.toml');
    writeFileSync(config, ['site = "fixture"', 'state_dir = "state"', 'key_file = "local.key"', `recovery_public_key = "${'A'.repeat(43)}"`, '[[disks]]', 'path = "repo"', '[[stores]]', 'name = "records"', 'type = "files"', `path = ${JSON.stringify(join(dir, 'records'))}`, ''].join('\n'));
    return { config, repo: join(dir, 'repo') };
  }

  function files(dir: string): string[] {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  }

  it('the v1 fixture carries magic and version byte 1 in every file', () => {
    const all = files(join(fixture, 'repo'));
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const f of all) {
      const head = readFileSync(f).subarray(0, 5);
      expect(magics, f).toContain(head.subarray(0, 4).toString('latin1'));
      expect(head[4], f).toBe(1);
    }
  });

  it('this release lists, checks and restores the v1 repository byte for byte', async () => {
    const a = appliance('v1');
    const snaps = await run(BIN.agent, ['--config', a.config, 'snapshots', '--json']);
    expect(snaps.code, snaps.stderr).toBe(0);
    expect(snaps.json.snapshots).toHaveLength(1);
    const check = await run(BIN.agent, ['--config', a.config, 'check', '--read-data', '--json']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const target = join(work, 'v1-restored');
    const r = await run(BIN.agent, ['--config', a.config, 'restore', 'latest', '--target', target, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const want = files(join(fixture, 'records')).map((f) => relative(join(fixture, 'records'), f)).sort();
    expect(files(target).map((f) => relative(target, f)).sort()).toEqual(want);
    for (const f of want) expect(readFileSync(join(target, f)).equals(readFileSync(join(fixture, 'records', f))), f).toBe(true);
  }, 60_000);

  it('a repository of an unknown future version is refused with MV_ERR_FORMAT_UNKNOWN', async () => {
    const a = appliance('v2');
    const cfg = join(a.repo, 'config');
    const b = readFileSync(cfg);
    b[4] = 2;
    writeFileSync(cfg, b);
    const r = await run(BIN.agent, ['--config', a.config, 'snapshots', '--json']);
    expect(r.code).not.toBe(0);
    const errors = JSON.stringify(r.json);
    expect(errors).toMatch(/MVCF version 2 is not supported \(this reader knows 1\)/);
    expect(existsSync(cfg)).toBe(true);
  });
});
