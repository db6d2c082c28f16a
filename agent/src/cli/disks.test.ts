import { describe, it, expect, vi, afterEach } from 'vitest';
import { writeFileSync, mkdirSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempDir } from '../repo/testing.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { setFaults } from '../store/faults.js';
import { main } from '../main.js';

/** Runs the CLI in this process; returns the exit code and the one JSON line it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: any }> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (lines.push(String(s)), true));
  try {
    const code = await main(['node', 'medvault-agent', '--json', ...args]);
    return { code, out: JSON.parse(lines.join('').trim().split('\n').pop()!) };
  } finally {
    spy.mockRestore();
  }
}

function alerts(state: string): { code: string; key: string; message: string; state: string }[] {
  const f = join(state, 'events.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'alert').map((e) => JSON.parse(e.body));
}

async function site(disks = 2, path = (i: number) => `disk${i}`): Promise<{ dir: string; c: string[]; disk: (i: number) => string; state: string }> {
  const dir = await tempDir('mv-disks-');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'a.json'), JSON.stringify({ a: randomBytes(500).toString('hex') }));
  writeFileSync(join(dir, 'src', 'scan.bin'), randomBytes(700_000));
  const rk = await generateRecoveryKeyPair();
  const config = join(dir, 'agent.toml');
  const lines = [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "local.key"`, `recovery_public_key = "${rk.publicKey}"`];
  for (let i = 1; i <= disks; i++) lines.push('[[disks]]', `path = "${path(i)}"`);
  lines.push('[[stores]]', 'name = "records"', 'type = "files"', 'path = "src"');
  writeFileSync(config, lines.join('\n'));
  const c = ['--config', config];
  expect((await cli(...c, 'init')).code).toBe(0);
  return { dir, c, disk: (i) => resolve(dir, path(i)), state: join(dir, 'state') };
}

describe('several backup disks', () => {
  afterEach(() => setFaults(undefined));

  it('writes every disk; a full, read-only or failing disk stops only itself, alerts, and the next run heals', async () => {
    const s = await site();
    const ok = await cli(...s.c, 'backup', 'records');
    expect(ok.code).toBe(0);
    expect(ok.out.results.map((r: any) => typeof r.snapshot)).toEqual(['string', 'string']);
    for (const [action, alert] of [['enospc', 'disk-full'], ['erofs', 'disk-read-only'], ['eio', 'disk-failing']] as const) {
      writeFileSync(join(s.dir, 'src', `${action}.bin`), randomBytes(300_000));
      setFaults(`action=${action},match=${s.disk(2)}/data`);
      const r = await cli(...s.c, 'backup', 'records');
      setFaults(undefined);
      expect(r.code, JSON.stringify(r.out)).toBe(6);
      expect(typeof r.out.results[0].snapshot).toBe('string');
      expect(r.out.results[1]).toMatchObject({ ok: false, alert });
      expect(alerts(s.state).some((a) => a.code === alert && a.key === `disk:${s.disk(2)}`)).toBe(true);
      const check = await cli(...s.c, 'check', '--read-data');
      expect(check.code).toBe(0);
      expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
      // the disk written again resolves the alert an earlier run opened (the controller closes it by key)
      expect(alerts(s.state).filter((a) => a.key === `disk:${s.disk(2)}`).at(-1)).toMatchObject({ state: 'resolved', code: 'disk-ok', message: `${s.disk(2)}: backed up records again` });
    }

  });

  it('an unplugged disk and a foreign disk are refused and alerted; the other disk is written', async () => {
    const s = await site();
    renameSync(s.disk(2), `${s.disk(2)}.away`);
    const r = await cli(...s.c, 'backup', 'records');
    expect(r.code).toBe(6);
    expect(r.out.results[1]).toMatchObject({ ok: false, alert: 'disk-missing' });
    // the backup log holds the run on each disk: ok on the first, failed on the unplugged one (it had no entry)
    const logs = readFileSync(join(s.state, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'log').map((e) => JSON.parse(e.body));
    expect(logs.slice(-2).map((l) => [l.result, l.errors[0]?.message.split(':')[0]])).toEqual([['ok', undefined], ['failed', s.disk(2)]]);
    renameSync(`${s.disk(2)}.away`, s.disk(2));
    expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
    // another appliance's disk plugged in where disk2 was
    const other = await site(1);
    renameSync(s.disk(2), `${s.disk(2)}.mine`);
    renameSync(other.disk(1), s.disk(2));
    const f = await cli(...s.c, 'backup', 'records');
    expect(f.code).toBe(6);
    expect(f.out.results[1]).toMatchObject({ ok: false, alert: 'disk-foreign' });
    expect(alerts(s.state).some((a) => a.code === 'disk-foreign')).toBe(true);
  });

  it('a replaced disk (new and empty) is refused, nothing written to it, until init --replace-disk names it; then backed up in full', async () => {
    const s = await site();
    const first = await cli(...s.c, 'init');
    const old = first.out.repos[1].id as string;
    expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
    renameSync(s.disk(2), `${s.disk(2)}.failed`);
    mkdirSync(s.disk(2)); // the new disk, mounted where the old one was
    expect((await cli(...s.c, 'backup', 'records')).code).toBe(6);
    const refused = await cli(...s.c, 'init');
    expect(refused.code).not.toBe(0);
    expect(refused.out.message).toBe(`${s.disk(2)}: holds no repository, but this agent's repository there is ${old}; not creating one; if this disk replaces that one (failed, lost, rotated out), run medvault-agent init --replace-disk ${s.disk(2)}`);
    expect(existsSync(join(s.disk(2), 'config'))).toBe(false);
    expect((await cli(...s.c, 'init', '--replace-disk', join(s.dir, 'elsewhere'))).out.code).toBe('MV_ERR_CONFIG_INVALID');
    const replaced = await cli(...s.c, 'init', '--replace-disk', `${s.disk(2)}/`); // as a shell's completion types it
    expect(replaced.code).toBe(0);
    expect(replaced.out.repos[1]).toMatchObject({ disk: s.disk(2), created: true, replaced: old });
    expect(replaced.out.repos[1].id).not.toBe(old);
    const b = await cli(...s.c, 'backup', 'records');
    expect(b.code).toBe(0);
    expect(b.out.results.map((r: any) => r.job)).toEqual(['incremental', 'full']);
    // the old disk plugged in again is now the foreign one, and the message says how to take it back
    renameSync(s.disk(2), `${s.disk(2)}.new`);
    renameSync(`${s.disk(2)}.failed`, s.disk(2));
    const back = await cli(...s.c, 'backup', 'records');
    expect(back.code).toBe(6);
    expect(back.out.results[1]).toMatchObject({ ok: false, alert: 'disk-foreign', message: expect.stringContaining(`run medvault-agent init --replace-disk ${s.disk(2)}`) });
  });

  it('init with a known disk unplugged (its folder gone) says the disk is not there, not "holds no repository ... --replace-disk"; nothing is created', async () => {
    const s = await site();
    expect((await cli(...s.c, 'init')).code).toBe(0);
    renameSync(s.disk(2), `${s.disk(2)}.away`); // unplugged: the folder is not there
    const r = await cli(...s.c, 'init');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatchObject({ code: 'MV_ERR_NOT_FOUND', message: `${s.disk(2)}: the backup disk is not there (unplugged or not mounted)` });
    expect(existsSync(s.disk(2))).toBe(false);
  });

  it('a second writer is refused at once with exit code 4', async () => {
    const s = await site(1);
    mkdirSync(join(s.disk(1), 'locks'), { recursive: true });
    writeFileSync(join(s.disk(1), 'locks', 'writer'), JSON.stringify({ pid: process.ppid, host: (await import('node:os')).hostname(), time: Date.now(), token: '0123456789abcdef' }));
    const t0 = Date.now();
    const r = await cli(...s.c, 'backup', 'records');
    expect(r.code).toBe(4);
    expect(r.out.code).toBe('MV_ERR_REPO_LOCKED');
    expect(Date.now() - t0).toBeLessThan(5000);
    // the same lock, but older than the bound: taken over
    writeFileSync(join(s.disk(1), 'locks', 'writer'), JSON.stringify({ pid: process.ppid, host: 'other-host', time: Date.now() - 2 * 3600_000, token: '0123456789abcdef' }));
    expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a real read-only disk (tmpfs remounted ro) stops cleanly; the other disk is written', async () => {
    const s = await site();
    const mnt = s.disk(2);
    const saved = `${mnt}.saved`;
    renameSync(mnt, saved);
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      execFileSync('cp', ['-a', `${saved}/.`, mnt]);
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const r = await cli(...s.c, 'backup', 'records');
      expect(r.code).toBe(6);
      expect(r.out.results[1]).toMatchObject({ ok: false, alert: 'disk-read-only' });
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
      expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });

  it.skipIf(!root)('a new empty disk mounted where the disk was is told apart from no disk mounted, and the message says how to take it', async () => {
    const dir = await tempDir('mv-mnt-');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    let mounted = true;
    try {
      const s = await site(2, (i) => (i === 2 ? `${mnt}/medvault` : `disk${i}`)); // the second disk below a mount point
      const old = (await cli(...s.c, 'init')).out.repos[1].id as string;
      execFileSync('umount', [mnt]);
      mounted = false;
      const unplugged = await cli(...s.c, 'backup', 'records');
      expect(unplugged.code).toBe(6);
      expect(unplugged.out.results[1]).toMatchObject({ ok: false, alert: 'disk-missing', message: `${mnt}/medvault: the backup disk is not there (unplugged or not mounted)` });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
      mounted = true;
      const empty = await cli(...s.c, 'backup', 'records');
      expect(empty.code).toBe(6);
      expect(empty.out.results[1]).toMatchObject({ ok: false, message: `${mnt}/medvault: the disk mounted at ${mnt} has no folder medvault (a new or empty disk?); if it replaces the disk that held this agent's repository ${old} (failed, lost, rotated out), run medvault-agent init --replace-disk ${mnt}/medvault` });
    } finally {
      if (mounted) execFileSync('umount', ['-l', mnt]);
    }
  });
});

describe('alerts raised by an earlier run resolve', () => {
  it('check --read-data clean resolves the repair alert of the disk; suspect clear resolves the ransomware alert', async () => {
    const s = await site(1);
    expect((await cli(...s.c, 'backup', 'records')).code).toBe(0);
    expect((await cli(...s.c, 'check')).code).toBe(0); // structural only: proves nothing about the data
    expect(alerts(s.state).filter((a) => a.key === `repair:${s.disk(1)}`)).toEqual([]);
    expect((await cli(...s.c, 'check', '--read-data')).code).toBe(0);
    expect(alerts(s.state).filter((a) => a.key === `repair:${s.disk(1)}`)).toMatchObject([{ state: 'resolved', code: 'MV_REPAIRED', message: `${s.disk(1)}: check --read-data clean` }]);
    // as the ransomware guard records a suspect snapshot (jobs/suspicion.ts)
    writeFileSync(join(s.state, 'suspect.jsonl'), `${JSON.stringify({ store: 'records', snapshot: 'a'.repeat(64), lastGood: 'b'.repeat(64), reasons: ['test'], at: Date.now() })}\n`);
    expect((await cli(...s.c, 'suspect', 'clear', 'records', '--by', 'Tom IT')).code).toBe(0);
    expect(alerts(s.state).filter((a) => a.key === 'ransomware:records')).toMatchObject([{ state: 'resolved', code: 'MV_ALERT_RANSOMWARE', store: 'records', message: 'store records: checked and cleared by Tom IT; pruning resumes' }]);
  });
});
