import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { tempDir } from '../repo/testing.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(root, 'agent', 'dist', 'bundle', 'main.js'); // what the launcher runs
// protocol's package.json points at its .ts sources; until it points at dist, load them with tsx
const protocolExport = JSON.parse(readFileSync(join(root, 'protocol', 'package.json'), 'utf8')).exports['.'].default as string;
const nodeArgs = protocolExport.endsWith('.ts') ? ['--import', 'tsx'] : [];

function cli(...args: string[]): { code: number; out: any; stderr: string } {
  const r = say('--json', ...args);
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  expect(lines.length, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1);
  return { code: r.status ?? -1, out: JSON.parse(lines[0]!), stderr: r.stderr };
}

/** The CLI as a person reads it (no --json). */
function say(...args: string[]) {
  return spawnSync(process.execPath, [...nodeArgs, main, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MEDVAULT_CONFIG: '' } });
}

/**
 * A site of its own: its recovery key, a config with `disks` disks and the store `records` at
 * `<site>/src` holding `files`, initialised. Returns the folder and the `--config` arguments.
 */
async function newSite(name: string, files: Record<string, string | Buffer>, disks = 1): Promise<{ site: string; c: string[] }> {
  const site = await tempDir(`mv-cli-${name}-`);
  mkdirSync(join(site, 'src'));
  for (const [f, data] of Object.entries(files)) writeFileSync(join(site, 'src', f), data);
  const rk = cli('recovery-key', 'generate', '--out', join(site, 'recovery.key'));
  const diskLines = Array.from({ length: disks }, (_, i) => [`[[disks]]`, `path = "${site}/disk${i + 1}"`]).flat();
  writeFileSync(join(site, 'agent.toml'), [`site = "clinic-${name}"`, `state_dir = "${site}/state"`, `key_file = "${site}/local.key"`, `recovery_public_key = "${rk.out.publicKey}"`, ...diskLines, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "${site}/src"`].join('\n'));
  const c = ['--config', join(site, 'agent.toml')];
  expect(cli(...c, 'init').code).toBe(0);
  return { site, c };
}

describe('medvault-agent CLI (built)', () => {
  let dir: string;
  let config: string;
  beforeAll(async () => {
    // The built CLI: `npm test` runs `tsc -b` first (rebuilding here would rewrite dist/ under other running tests).
    dir = await tempDir('mv-cli-');
    mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'src', 'a.txt'), 'alpha');
    writeFileSync(join(dir, 'src', 'sub', 'b.txt'), 'beta');
  }, 120_000);

  it("status --json: `running` says whether the daemon runs, also while a job is under way (the job is `job`)", async () => {
    const { site, c } = await newSite('status', { 'a.txt': 'a' });
    const now = Date.now();
    const job = { store: 'records', job: 'incremental', since: now - 5000 };
    mkdirSync(join(site, 'state'), { recursive: true });
    // as the daemon writes it: this test's own pid stands for the daemon's
    writeFileSync(join(site, 'state', 'status.json'), JSON.stringify({ pid: process.pid, site: 'clinic-status', updatedAt: now, startedAt: now - 60_000, stores: [], disks: [], queued: [], alerts: [], backlog: { objects: 0, bytes: 0 }, running: job }));
    const r = cli(...c, 'status');
    expect(r.code).toBe(0);
    expect(r.out.running).toBe(true);
    expect(r.out.job).toEqual(job);
    expect(say(...c, 'status').stdout).toMatch(/\nrunning: incremental of records for \d+ s\n/);
  });

  it('run refuses to start beside a daemon that runs (it started a second one, splitting orders and receipts); a stale status does not stop it', async () => {
    const { site, c } = await newSite('twice', { 'a.txt': 'a' });
    const now = Date.now();
    mkdirSync(join(site, 'state'), { recursive: true });
    const status = (pid: number, updatedAt: number) => writeFileSync(join(site, 'state', 'status.json'), JSON.stringify({ pid, site: 'clinic-twice', updatedAt, startedAt: now - 60_000, stores: [], disks: [], queued: [], alerts: [], backlog: { objects: 0, bytes: 0 } }));
    status(process.pid, now); // this test's own pid stands for the running daemon's
    const r = cli(...c, 'run');
    expect(r.code).toBe(4);
    expect(r.out).toMatchObject({ code: 'MV_ERR_REPO_LOCKED', message: expect.stringMatching(new RegExp(`^the agent daemon already runs on .*state \\(pid ${process.pid}, status written \\d+ s ago\\): not starting a second one`)) });
    status(process.pid, now - 3_600_000); // an old status (a pid reused after a reboot): not a running daemon
    expect(cli(...c, 'run').out.code).not.toBe('MV_ERR_REPO_LOCKED');
  });

  it('recovery-key generate, init, backup, snapshots, ls, restore, check', () => {
    const rk = cli('recovery-key', 'generate', '--out', join(dir, 'recovery.key'));
    expect(rk.code).toBe(0);
    expect(statSync(join(dir, 'recovery.key')).mode & 0o777).toBe(0o600);
    config = join(dir, 'agent.toml');
    writeFileSync(
      config,
      [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "local.key"`, `recovery_public_key = "${rk.out.publicKey}"`, `[[disks]]`, `path = "disk1"`, `[[disks]]`, `path = "disk2"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'),
    );
    const c = ['--config', config];
    const init = cli(...c, 'init');
    expect(init.code).toBe(0);
    expect(init.out.repos).toHaveLength(2);
    expect(statSync(join(dir, 'local.key')).mode & 0o777).toBe(0o600);
    expect(cli(...c, 'init').out.repos.map((r: any) => r.created)).toEqual([false, false]);

    const backup = cli(...c, 'backup', 'records');
    expect(backup.code).toBe(0);
    expect(backup.out.results).toHaveLength(2);
    expect(backup.out.results[0].summary.files).toBe(2);
    // neither disk has a snapshot to be incremental to: the run is full wherever its type is said
    expect(backup.out.results.map((r: any) => r.job)).toEqual(['full', 'full']);
    const logged = readFileSync(join(dir, 'state', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'log').map((e) => JSON.parse(e.body).job);
    expect(logged).toEqual(['full', 'full']);
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'state', 'runs.json'), 'utf8')).records)).toEqual(['full']);
    expect(cli(...c, 'backup', 'records', '--full', '--tag', 'weekly-audit').code).toBe(0);
    expect(cli(...c, 'backup', 'nope').code).toBe(2);

    const snaps = cli(...c, 'snapshots', '--store', 'records');
    expect(snaps.code).toBe(0);
    expect(snaps.out.snapshots).toHaveLength(4);
    expect(snaps.out.snapshots[0].offsite).toBe('local');
    // the table as read: every value starts under its header, wider values included; tags are shown
    const [head, ...table] = say(...c, 'snapshots').stdout.trimEnd().split('\n');
    expect(head).toMatch(/^snapshot +time +store +job +files +size +partial +offsite +tags +disk$/);
    expect(table).toHaveLength(4);
    const at = (h: string) => head!.indexOf(h);
    for (const row of table) {
      expect(row.indexOf(' records ') + 1, row).toBe(at('store'));
      expect(row.slice(at('disk')), row).toMatch(/\/disk[12]$/);
      expect(row.slice(at('job')), row).toMatch(/^full +2 /);
      expect(row.slice(0, at('files') + 'files'.length), row).toMatch(/ 2$/); // numbers end under their header
    }
    expect(table.filter((r) => r.slice(at('tags')).startsWith('weekly-audit '))).toHaveLength(2);

    const ls = cli(...c, 'ls', 'latest');
    expect(ls.out.entries.map((e: any) => e.path)).toEqual(['a.txt', 'sub', 'sub/b.txt']);
    expect(cli(...c, 'ls', 'latest', 'sub').out.entries.map((e: any) => e.path)).toEqual(['sub', 'sub/b.txt']);

    const target = join(dir, 'restored');
    const restore = cli(...c, 'restore', 'latest', '--target', target, '--path', 'sub');
    expect(restore.code).toBe(0);
    expect(restore.out.verified).toBe(1);
    // counts of one read as one (not "1 files", "1 stores"), in the restore, its refusal and the config check
    const one = join(dir, 'one');
    expect(say(...c, 'restore', 'latest', '--target', one, '--path', 'sub').stdout).toMatch(/ into .*one: 1 file, 4 B, 1 verified\n/);
    expect(say(...c, 'restore', 'latest', '--target', one, '--path', 'sub').stdout).toContain(`1 of the snapshot's entries already exists in ${one} and was left as it is: restore into`);
    expect(say(...c, 'config', 'check').stdout).toBe(`${config}: OK: site clinic-a, 1 store, 2 disks\n`);
    expect(readFileSync(join(target, 'sub', 'b.txt'), 'utf8')).toBe('beta');
    const again = cli(...c, 'restore', 'latest', '--target', target);
    expect(again.code).toBe(1);
    expect(again.out.failed).toEqual(['sub/b.txt']);
    // a snapshot that is on no disk: every disk looked on is named (ids differ from disk to disk)
    const none = cli(...c, 'restore', 'deadbeef00', '--target', join(dir, 'none'));
    expect(none.code).toBe(1);
    expect(none.out.message).toBe(`no snapshot deadbeef00 on any backup disk (${join(dir, 'disk1')}, ${join(dir, 'disk2')}); medvault-agent snapshots lists them`);
    expect(cli(...c, 'restore', 'lastest', '--target', join(dir, 'none')).out.message).toMatch(/^no snapshot lastest on any backup disk \(.*disk1, .*disk2\) \(a snapshot is named "latest" or by 6 or more hex digits of its id\)/);
    // a path the snapshot does not hold is said as such
    expect(cli(...c, 'restore', 'latest', '--target', join(dir, 'none'), '--path', 'nosuch').out.message).toMatch(/: no path nosuch$/);
    // as a technician reads it: each refused name once, and what to do about them
    const text = say(...c, 'restore', 'latest', '--target', target);
    expect(text.status).toBe(1);
    expect(text.stdout).toContain('  FAILED: sub/b.txt: exists in the target; not overwritten (mode new)\n');
    expect(text.stdout).toContain(`2 of the snapshot's entries already exist in ${target} and were left as they are: restore into an empty folder, or add --overwrite`);
    // a path that climbs out of the snapshot is bad input (exit 2, the path named), not damage; nothing is restored
    for (const path of ['../x', 'sub/../../x', './sub', '/sub']) {
      const outside = cli(...c, 'restore', 'latest', '--target', join(dir, 'outside'), '--path', path);
      expect(outside.code, path).toBe(2);
      expect(outside.out).toMatchObject({ ok: false, code: 'MV_ERR_CONFIG_INVALID' });
      expect(outside.out.message.startsWith(`--path: path ${JSON.stringify(path)} `), outside.out.message).toBe(true);
      expect(existsSync(join(dir, 'outside')), path).toBe(false);
    }

    // with the recovery key instead of the local key
    const viaRecovery = cli(...c, '--recovery-key', join(dir, 'recovery.key'), 'snapshots');
    expect(viaRecovery.out.snapshots).toHaveLength(4);

    expect(cli(...c, 'check', '--read-data').code).toBe(0);
    // damage one pack on disk1
    const packDir = join(dir, 'disk1', 'data');
    const sub = readdirSync(packDir)[0]!;
    const pack = join(packDir, sub, readdirSync(join(packDir, sub))[0]!);
    const bytes = readFileSync(pack);
    bytes[40]! ^= 1;
    rmSync(pack);
    writeFileSync(pack, bytes);
    const check = cli(...c, 'check', '--read-data');
    expect(check.code).toBe(5);
    expect(check.out.ok).toBe(false);
    expect(check.out.results[0].damaged[0].kind).toBe('pack');
    // a drill from that copy fails as a corrupt copy: exit 5 like check, not 1
    const drill = cli(...c, 'drill', '--source', 'local');
    expect(drill.out.drills[0]).toMatchObject({ result: 'failed', runs: [{ source: 'local', result: 'failed', error: { code: 'MV_ERR_DATA_CORRUPT' } }] });
    expect(drill.code).toBe(5);

    const bad = cli('--config', join(dir, 'missing.toml'), 'snapshots');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatchObject({ ok: false, code: 'MV_ERR_CONFIG_INVALID' });
  });

  it('progress bars on a terminal: no percentage without a total, 100% only when the command is done', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 57; i++) files[`a${String(i).padStart(2, '0')}.bin`] = randomBytes(300_000);
    for (let i = 57; i < 75; i++) files[`z${i}.txt`] = Buffer.alloc(0); // the bytes are all in the first 57
    const { site, c } = await newSite('tty', files);
    /** The frames a command drew on a terminal (util-linux script gives it one). */
    const frames = (...args: string[]) => {
      const cmd = [process.execPath, ...nodeArgs, main, ...c, ...args].map((a) => `'${a}'`).join(' ');
      const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { cwd: root, encoding: 'utf8', env: { ...process.env, MEDVAULT_CONFIG: '' } });
      expect(r.status, r.stdout).toBe(0);
      // eslint-disable-next-line no-control-regex
      return r.stdout.split(/\r|\x1b\[1G/).map((f) => f.replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1b[78]/g, '').trim()).filter((f) => f.includes(' files') && !f.includes('snapshot ')); // the bar's, not the result line
    };
    const first = frames('backup', 'records');
    expect(first.at(-1)).toMatch(/disk1: 75 files, 16\.3 MiB$/); // a first backup knows no total: no bar, no percentage
    expect(first.filter((f) => f.includes('%'))).toEqual([]);
    const second = frames('backup', 'records'); // the last snapshot's size is the estimate
    expect(second.at(-1)).toMatch(/ 100% .*disk1: 75 of ~75 files, 16\.3 MiB$/);
    expect(second.slice(0, -1).filter((f) => f.includes('100%'))).toEqual([]);
    const restore = frames('restore', 'latest', '--target', join(site, 'out'));
    expect(restore.at(-1)).toMatch(/ 100% 75\/75 files$/);
    expect(restore.slice(0, -1).filter((f) => f.includes('100%'))).toEqual([]);
  }, 60_000);

  it('backup --tag: a tag with a line break, a tab or over 100 characters, or over 100 tags, is refused before anything is read (exit 2); the snapshots table keeps one line per snapshot', async () => {
    const { c } = await newSite('tags', { 'a.txt': 'alpha' });
    for (const tag of ['a\nb', 'x\ty', 'l'.repeat(101), '']) {
      const r = cli(...c, 'backup', 'records', '--tag', 'ok', '--tag', tag);
      expect([r.code, r.out.code, r.out.message]).toEqual([2, 'MV_ERR_CONFIG_INVALID', `--tag ${JSON.stringify(tag)}: a tag is 1-100 characters, without control characters (line breaks, tabs)`]);
    }
    const many = Array.from({ length: 101 }, (_, i) => ['--tag', `t${i}`]).flat(); // a snapshot takes 100: it had read and written everything, then failed with zod's dump
    expect(cli(...c, 'backup', 'records', ...many).out).toMatchObject({ code: 'MV_ERR_CONFIG_INVALID', message: '--tag given 101 times: a snapshot takes at most 100 tags' });
    expect(cli(...c, 'snapshots').out.snapshots).toEqual([]); // nothing was written
    expect(cli(...c, 'backup', 'records', '--tag', 'l'.repeat(100), '--tag', '病歴').code).toBe(0);
    expect(say(...c, 'snapshots').stdout.trimEnd().split('\n')).toHaveLength(2);
  }, 60_000);

  it('a restore run again into the same folder lists the first 10 names it left, then how many more; --json all of them', async () => {
    const files = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`f${String(i).padStart(2, '0')}.txt`, `record ${i}`]));
    const { site, c } = await newSite('again', files);
    expect(cli(...c, 'backup', 'records').code).toBe(0);
    const target = join(site, 'out');
    expect(cli(...c, 'restore', 'latest', '--target', target).code).toBe(0);
    const again = say(...c, 'restore', 'latest', '--target', target);
    expect(again.status).toBe(1);
    expect(again.stdout.trimEnd().split('\n').slice(1)).toEqual([
      ...Object.keys(files).slice(0, 10).map((f) => `  FAILED: ${f}: exists in the target; not overwritten (mode new)`),
      '  ... and 15 more that exist in the target (--json lists them all)',
      `25 of the snapshot's entries already exist in ${target} and were left as they are: restore into an empty folder, or add --overwrite to replace them`,
    ]);
    expect(cli(...c, 'restore', 'latest', '--target', target).out.failed).toHaveLength(25);
    // 11: one more, in the singular
    const eleven = await newSite('again11', Object.fromEntries(Object.entries(files).slice(0, 11)));
    expect(cli(...eleven.c, 'backup', 'records').code).toBe(0);
    expect(cli(...eleven.c, 'restore', 'latest', '--target', join(eleven.site, 'out')).code).toBe(0);
    expect(say(...eleven.c, 'restore', 'latest', '--target', join(eleven.site, 'out')).stdout).toContain('\n  ... and 1 more that exists in the target (--json lists them all)\n');
  }, 60_000);

  it('Ctrl-C (SIGINT) mid-backup: one line naming the command, exit 130; the next backup completes and checks clean', async () => {
    // a site of its own (the test above damages a pack of its disk 1)
    const { site, c } = await newSite('i', { 'a.txt': 'alpha' });
    writeFileSync(join(site, 'src', 'new.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
    // stopped (SIGSTOP) at its first object write, so the signal lands in the middle of the run
    const p = spawn(process.execPath, [...nodeArgs, main, '--json', ...c, 'backup', 'records'], { cwd: root, env: { ...process.env, MEDVAULT_CONFIG: '', MEDVAULT_FAULTS: 'match=put.write,at=1,action=stop' } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    while (readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1]![0] !== 'T') await new Promise((r) => setTimeout(r, 20));
    p.kill('SIGINT');
    p.kill('SIGCONT');
    expect(await exited).toBe(130);
    const line = JSON.parse(out.trim().split('\n').pop()!);
    expect(line).toMatchObject({ ok: false, code: 'MV_ERR_INTERRUPTED' });
    expect(line.message).toMatch(/^backup interrupted by SIGINT/);
    const next = cli(...c, 'backup', 'records');
    expect(next.code).toBe(0);
    expect(cli(...c, 'check', '--read-data').code).toBe(0);
    expect(cli(...c, 'ls', 'latest').out.entries.map((e: any) => e.path)).toContain('new.bin');
  }, 60_000);

  it('a disk unplugged: restore and ls use the other disk; a snapshot on no disk reached says which disk was not looked on', async () => {
    const { site, c } = await newSite('u', { 'a.txt': 'alpha' }, 2);
    const [one, two] = cli(...c, 'backup', 'records').out.results.map((r: any) => r.snapshot as string);
    execFileSync('mv', [join(site, 'disk1'), join(site, 'disk1.away')]);
    const r = cli(...c, 'restore', two!.slice(0, 12), '--target', join(site, 'r'));
    expect(r.code).toBe(0);
    expect(r.out.disk).toBe(join(site, 'disk2'));
    expect(readFileSync(join(site, 'r', 'a.txt'), 'utf8')).toBe('alpha');
    expect(cli(...c, 'restore', 'latest', '--target', join(site, 'r2')).code).toBe(0);
    expect(cli(...c, 'ls', 'latest').out.entries.map((e: any) => e.path)).toEqual(['a.txt']);
    expect(cli(...c, 'restore', one!.slice(0, 12), '--target', join(site, 'r3')).out.message).toBe(
      `no snapshot ${one!.slice(0, 12)} on the backup disk ${join(site, 'disk2')}; not looked on ${join(site, 'disk1')}: the backup disk is not there (unplugged or not mounted); medvault-agent snapshots lists them`,
    );
    execFileSync('mv', [join(site, 'disk2'), join(site, 'disk2.away')]);
    expect(cli(...c, 'restore', 'latest', '--target', join(site, 'r4')).out.message).toBe(`${join(site, 'disk1')}: the backup disk is not there (unplugged or not mounted)`);
  }, 60_000);

  it('snapshots --store with a typo: exit 2 naming the stores there are, not an empty table and exit 0 ("never backed up")', async () => {
    const { c } = await newSite('typo', { 'a.txt': 'alpha' });
    expect(cli(...c, 'snapshots', '--store', 'records').out.snapshots).toHaveLength(0); // a configured store, not backed up yet: an empty list
    expect(cli(...c, 'backup', 'records').code).toBe(0);
    const typo = cli(...c, 'snapshots', '--store', 'recrods');
    expect(typo.code).toBe(2);
    expect(typo.out.code).toBe('MV_ERR_CONFIG_INVALID');
    expect(typo.out.message).toMatch(/: no store named recrods and no snapshots of one \(have: records\)$/);
    expect(cli(...c, 'snapshots', '--store', 'records').out.snapshots).toHaveLength(1);
  }, 60_000);

  it("restore --target naming a file (or a folder under one): exit 2 saying it is not a folder, not mkdir's bare EEXIST", async () => {
    const { site, c } = await newSite('tfile', { 'a.txt': 'alpha' });
    expect(cli(...c, 'backup', 'records').code).toBe(0);
    writeFileSync(join(site, 'afile'), 'x');
    const file = cli(...c, 'restore', 'latest', '--target', join(site, 'afile'));
    expect(file.code).toBe(2);
    expect(file.out.message).toBe(`restore target ${join(site, 'afile')} is not a folder: name a folder, or one to create`);
    const under = cli(...c, 'restore', 'latest', '--target', join(site, 'afile', 'x'));
    expect(under.code).toBe(2);
    expect(under.out.message).toBe(`restore target ${join(site, 'afile', 'x')} is not a folder (a file is in its path): name a folder, or one to create`);
    expect(readFileSync(join(site, 'afile'), 'utf8')).toBe('x');
  }, 60_000);

  it('Ctrl-C mid-restore: the partial temp file is removed, the line says how to finish (the next restore refuses what was placed)', async () => {
    const { site, c } = await newSite('r', { 'a.txt': 'alpha', 'big.bin': randomBytes(96 * 1024 * 1024) }); // big.bin: long enough to be caught mid-write
    expect(cli(...c, 'backup', 'records').code).toBe(0);
    const target = join(site, 'restored');
    const temps = () => (existsSync(target) ? readdirSync(target).filter((n) => n.startsWith('.mv-restore-')) : []);
    let caught = false;
    for (let attempt = 0; attempt < 5 && !caught; attempt++) {
      rmSync(target, { recursive: true, force: true });
      const p = spawn(process.execPath, [...nodeArgs, main, '--json', ...c, 'restore', 'latest', '--target', target], { cwd: root, env: { ...process.env, MEDVAULT_CONFIG: '' } });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
      let running = true;
      void exited.then(() => (running = false));
      // stopped while a temp file is there, so the signal lands while it is being written
      while (running && !caught) {
        if (temps().length > 0) {
          p.kill('SIGSTOP');
          caught = temps().length > 0;
          if (caught) p.kill('SIGINT');
          p.kill('SIGCONT');
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      const code = await exited;
      if (!caught) continue;
      expect(code).toBe(130);
      const line = JSON.parse(out.trim().split('\n').pop()!);
      expect(line).toMatchObject({ ok: false, code: 'MV_ERR_INTERRUPTED' });
      expect(line.message).toMatch(/^restore interrupted by SIGINT before it ended: .*--overwrite/);
    }
    expect(caught).toBe(true);
    expect(temps()).toEqual([]);
    const again = cli(...c, 'restore', 'latest', '--target', target, '--overwrite');
    expect(again.code).toBe(0);
    expect(readFileSync(join(target, 'big.bin')).equals(readFileSync(join(site, 'src', 'big.bin')))).toBe(true);
    expect(temps()).toEqual([]);
  }, 120_000);
});
