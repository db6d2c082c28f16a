/**
 * Bad configuration files, each reported by `medvault-agent config check` (and
 * `medvault-controller config check`) with the file, the line, the key and what was expected,
 * before anything runs (exit 2). One row per mistake; the message must match exactly.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig, configSchema } from '../../agent/src/config.js';
import { checkConfig as checkControllerConfig } from '../../controller/src/config.js';
import { formatIssue } from '@medvault/protocol';
import { BIN, run } from '../support/procs.js';

const dir = mkdtempSync(join(tmpdir(), 'mv-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = 'A'.repeat(43);
/** A valid agent.toml; each row replaces one line (by its key) or appends lines. */
const good = [
  'site = "clinic-a"', //                         1
  'state_dir = "/var/lib/medvault"', //            2
  'key_file = "credential:local.key"', //          3
  `recovery_public_key = "${KEY}"`, //             4
  `controller_public_key = "${KEY}"`, //           5
  'restore_roots = ["/srv/restore"]', //           6
  '[nats]', //                                     7
  'servers = ["tls://ctl.example:4222"]', //       8
  '[[disks]]', //                                  9
  'path = "/mnt/backup1/medvault"', //             10
  '[[stores]]', //                                 11
  'name = "records"', //                           12
  'type = "files"', //                             13
  'path = "/srv/records"', //                      14
  'rpo_s = 60', //                                 15
  '[stores.schedule]', //                          16
  'full = "0 2 * * 0"', //                         17
  '[[stores]]', //                                 18
  'name = "ehr"', //                               19
  'type = "mysql"', //                             20
  'database = "openemr"', //                       21
  'port = 3306', //                                22
];

function variant(edits: Record<number, string | null>, extra: string[] = []): string {
  return [...good.map((l, i) => (edits[i + 1] === undefined ? l : edits[i + 1])).filter((l): l is string => l !== null), ...extra, ''].join('\n');
}

const rows: Array<{ mistake: string; text: string; message: string }> = [
  { mistake: 'TOML syntax: unterminated string', text: variant({ 12: 'name = "records' }), message: ':12: (syntax): unterminated string: no closing quote before the end of the line (column 16)' },
  { mistake: 'TOML syntax: unterminated string at the end of the file', text: variant({}, ['path = "/srv/x']).slice(0, -1), message: ':23: (syntax): unterminated string: no closing quote before the end of the file (column 8)' },
  { mistake: 'TOML syntax: a control character inside a string', text: variant({ 12: 'name = "rec\u0001ords"' }), message: ':12: (syntax): control characters are not allowed in strings (column 12)' },
  { mistake: 'TOML syntax: a bare CR inside a closed string', text: variant({ 12: 'name = "rec\rords"' }), message: ':12: (syntax): control characters are not allowed in strings (column 12)' },
  { mistake: 'TOML syntax: a bare CR at the end of a comment', text: variant({}, ['# last line\r']).slice(0, -1), message: ':23: (syntax): control characters are not allowed in comments (column 12)' },
  { mistake: 'rpo_s is not a number', text: variant({ 15: 'rpo_s = "fast"' }), message: ':15: stores[0].rpo_s: expected a number of seconds (1-86400), got "fast"' },
  { mistake: 'rpo_s out of range', text: variant({ 15: 'rpo_s = 0' }), message: ':15: stores[0].rpo_s: expected a number of seconds (1-86400), got 0' },
  { mistake: 'site id with capitals and a space', text: variant({ 1: 'site = "Clinic A"' }), message: ':1: site: expected a site id: lowercase letters, digits and -, at most 63, got "Clinic A"' },
  { mistake: 'recovery key too short', text: variant({ 4: 'recovery_public_key = "abc"' }), message: ':4: recovery_public_key: expected a 32-byte key as 43 base64url characters, got "abc"' },
  { mistake: 'misspelt top-level key', text: variant({}, ['[nats_tls]']).replace('restore_roots', 'restore_root'), message: `:6: restore_root: unknown key (expected one of: ${Object.keys(configSchema.shape).join(', ')})` },
  { mistake: 'restore_roots is a string, not a list', text: variant({ 6: 'restore_roots = "/srv/restore"' }), message: ':6: restore_roots: expected a list of strings, got "/srv/restore"' },
  { mistake: 'http:// instead of nats://', text: variant({ 8: 'servers = ["http://ctl.example:4222"]' }), message: ':8: nats.servers[0]: expected nats://host:port, got "http://ctl.example:4222"' },
  { mistake: 'no servers at all', text: variant({ 8: 'servers = []' }), message: ':8: nats.servers: expected at least 1 entries, got none' },
  { mistake: 'unknown key in [nats]', text: variant({ 8: 'servers = ["tls://ctl.example:4222"]\ntimeout = 5' }), message: ':9: nats.timeout: unknown key (expected one of: servers, creds, nkey_file, ca_file)' },
  { mistake: 'no [[disks]]', text: variant({ 9: null, 10: null }), message: ': disks: missing: expected a list of tables' },
  // was 'expected a list of table with type = "files"s': the plural on the wrong word, and the database types left out
  { mistake: 'no [[stores]]', text: variant({ 11: null, 12: null, 13: null, 14: null, 15: null, 16: null, 17: null, 18: null, 19: null, 20: null, 21: null, 22: null }), message: ': stores: missing: expected a list of tables with type = one of "files", "postgres", "mysql"' },
  { mistake: 'unknown store type', text: variant({ 13: 'type = "ftp"' }), message: ':13: stores[0].type: expected one of "files", "postgres", "mysql", got "ftp"' },
  { mistake: 'store without a path', text: variant({ 14: null }), message: ':11: stores[0].path: missing: expected a path' },
  { mistake: 'continuous given as a string', text: variant({ 15: 'continuous = "yes"' }), message: ':15: stores[0].continuous: expected true or false, got "yes"' },
  { mistake: 'cron expression in words', text: variant({ 17: 'full = "every sunday"' }), message: ":17: stores[0].schedule.full: expected a cron expression (CronPattern: invalid configuration format ('every sunday'), exactly five, six, or seven space separated parts are required.), got \"every sunday\"" },
  { mistake: 'unknown time zone', text: variant({ 17: 'full = "0 2 * * 0"\ntimezone = "Mars/Olympus"' }), message: ':18: stores[0].schedule.timezone: expected an IANA time zone such as Europe/Berlin, got "Mars/Olympus"' },
  { mistake: 'database port out of range', text: variant({ 22: 'port = 70000' }), message: ':22: stores[1].port: expected a TCP port (1-65535), got 70000' },
  { mistake: 'database name with a space', text: variant({ 21: 'database = "open emr"' }), message: ':21: stores[1].database: expected a database name, got "open emr"' },
  { mistake: 'files-only key on a database store', text: variant({ 22: 'port = 3306\ncontinuous = true' }), message: ':23: stores[1].continuous: unknown key (expected one of: name, type, database, host, port, user, password_file, schedule, rpo_s, rto_s)' },
  { mistake: 'the same store name twice', text: variant({ 19: 'name = "records"' }), message: ':19: stores[1].name: store name "records" is already used by stores[0]' },
  { mistake: 'bandwidth window with an unknown day', text: variant({}, ['[replication]', 'bandwidth = [{ days = "mon-fry", from = "07:00", to = "19:00", limit = "5Mbit" }]']), message: ':24: replication.bandwidth[0].days: expected a day list such as "mon-fri", "sat,sun" or "*", got "mon-fry"' },
  { mistake: 'bandwidth limit without a unit', text: variant({}, ['[replication]', 'bandwidth = [{ days = "*", from = "07:00", to = "19:00", limit = "5" }]']), message: ':24: replication.bandwidth[0].limit: expected a rate such as "5Mbit", "500kbit", "2MB" (at least 64kbit) or "unlimited", got "5"' },
  { mistake: 'bandwidth window over midnight', text: variant({}, ['[replication]', 'timezone = "Europe/Berlin"', '[[replication.bandwidth]]', 'days = "mon-fri"', 'from = "22:00"', 'to = "06:00"', 'limit = "2Mbit"']), message: ':28: replication.bandwidth[0].to: expected a time after from (22:00); a window over midnight is two windows, got "06:00"' },
  { mistake: 'bandwidth clock time out of range', text: variant({}, ['[replication]', 'bandwidth = [{ days = "sat", from = "7am", to = "19:00", limit = "1Mbit" }]']), message: ':24: replication.bandwidth[0].from: expected a local time such as "07:00", got "7am"' },
  { mistake: 'backup disk inside the record store', text: variant({ 10: 'path = "/srv/records/backup"' }), message: ':10: disks[0].path: expected a disk outside the record stores, got /srv/records/backup, inside stores[0] (records): backups would back themselves up' },
];

describe('configuration mistakes: file, line, key and what was expected', () => {
  it.each(rows.map((r, i) => ({ ...r, i })))('$mistake', ({ text, message, i }) => {
    const file = join(dir, `agent-${i}.toml`);
    writeFileSync(file, text);
    const { config, issues } = checkConfig(file);
    expect(config).toBeUndefined();
    const first = formatIssue(issues.find((x) => formatIssue(x).includes(message.split(': ')[1]!.split(':')[0]!)) ?? issues[0]!);
    if (message.includes('(syntax)')) expect(first).toBe(`${file}${message}`);
    else expect(issues.map(formatIssue)).toContain(`${file}${message}`);
  });

  it('a file that is missing, a directory or unreadable is said in plain words, by both programs', async () => {
    const missing = join(dir, 'nosuch.toml');
    for (const [file, said] of [[missing, 'does not exist'], [dir, 'is a directory, not a file']] as const) {
      expect(checkConfig(file).issues.map(formatIssue)).toEqual([`config file ${file} ${said}`]);
      expect(checkControllerConfig({ config: file }).issues.map(formatIssue)).toEqual([`config file ${file} ${said}`]);
    }
    const r = await run(BIN.agent, ['--config', missing, 'config', 'check']);
    expect([r.code, r.stderr]).toEqual([2, `medvault-agent: config file ${missing} does not exist\n`]);
    const c = await run(BIN.controller, ['--config', missing, 'config', 'check']);
    expect([c.code, c.stderr]).toEqual([2, `medvault-controller: config file ${missing} does not exist\n`]);
    // a FIFO nobody writes: said at once (reading it had blocked for good, deaf to Ctrl-C and SIGTERM)
    const fifo = join(dir, 'fifo.toml');
    execFileSync('mkfifo', [fifo]);
    for (const bin of [BIN.agent, BIN.controller]) {
      const f = spawnSync(process.execPath, [bin, '--config', fifo, 'config', 'check'], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
      expect([f.status, f.stderr.split(': ').slice(1).join(': ')]).toEqual([2, `config file ${fifo} is a FIFO (named pipe), not a file\n`]);
    }
    if (process.getuid?.() !== 0) { // root reads every file
      const locked = join(dir, 'locked.toml');
      writeFileSync(locked, variant({}), { mode: 0o000 });
      expect(checkConfig(locked).issues.map(formatIssue)).toEqual([`config file ${locked} cannot be read: permission denied (read it as its owner or root, or give this user read access)`]);
    }
  });

  it('the valid file passes, and every table row is a distinct mistake (at least 15)', () => {
    const file = join(dir, 'agent-good.toml');
    writeFileSync(file, variant({}));
    expect(checkConfig(file).issues).toEqual([]);
    expect(new Set(rows.map((r) => r.message)).size).toBeGreaterThanOrEqual(15);
  });

  it('reports every mistake at once, in line order', () => {
    const file = join(dir, 'agent-many.toml');
    writeFileSync(file, variant({ 1: 'site = "Clinic A"', 15: 'rpo_s = "fast"', 22: 'port = 70000' }));
    expect(checkConfig(file).issues.map((i) => `${i.line} ${i.key}`)).toEqual(['1 site', '15 stores[0].rpo_s', '22 stores[1].port']);
  });

  it('the CLIs exit 2 with the messages before anything runs', async () => {
    const file = join(dir, 'agent-cli.toml');
    writeFileSync(file, variant({ 15: 'rpo_s = "fast"', 22: 'port = 70000' }));
    const r = await run(BIN.agent, ['--config', file, 'config', 'check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`medvault-agent: ${file}:15: stores[0].rpo_s: expected a number of seconds (1-86400), got "fast"\n${file}:22: stores[1].port: expected a TCP port (1-65535), got 70000\n`);
    const daemon = await run(BIN.agent, ['--config', file, 'run']);
    expect(daemon.code).toBe(2);
    writeFileSync(file, variant({}));
    const ok = await run(BIN.agent, ['--config', file, 'config', 'check', '--json']);
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ ok: true, site: 'clinic-a', stores: ['records', 'ehr'] });
    // a store folder that is not there is said (exit 0: a share may mount after the daemon's start)
    expect(ok.json.warnings).toEqual([`store records: /srv/records does not exist (not mounted yet? a typo?); medvault-agent doctor checks the machine`]);

    const ctl = join(dir, 'controller.toml');
    writeFileSync(ctl, 'state_dir = "/var/lib/medvault-controller"\n[nats]\nservers = ["nats://127.0.0.1:4222"]\nreplicas = 2\n[sessions]\nidle_timeout_s = 5\n');
    expect(checkControllerConfig({ config: ctl }).issues.map(formatIssue)).toEqual([
      `${ctl}:4: nats.replicas: expected one of 1, 3, 5, got 2`,
      `${ctl}:6: sessions.idle_timeout_s: expected a number of seconds (10-86400), got 5`,
    ]);
    const c = await run(BIN.controller, ['--config', ctl, 'config', 'check']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain(`${ctl}:4: nats.replicas: expected one of 1, 3, 5, got 2`);
  });
});
