/**
 * File and folder names with control characters (a line break, a terminal escape sequence, a tab,
 * DEL) are shown escaped in the human output of the real CLI (agent/bin/medvault-agent): they can
 * neither forge an output line nor reach the terminal. Real files, backed up and read back.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { flipByteInLargestPack, tempDir } from '../repo/testing.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const launcher = join(root, 'agent', 'bin', 'medvault-agent');

/** The names in the store (raw) and how the human output must show them. */
const BREAK = 'visit\nrestored: all files verified OK.txt';
const TITLE = '\u001b]0;pwned\u0007report.pdf';
const TAB = 'tab\there.txt';
const DEL = 'del\u007f.txt';
const FOLDER = 'scan\r2024';
const shown = ['visit\\nrestored: all files verified OK.txt', '\\e]0;pwned\\x07report.pdf', 'tab\\there.txt', 'del\\x7f.txt', 'scan\\r2024/x.dcm'];

function run(...args: string[]) {
  return spawnSync(launcher, args, { cwd: root, encoding: 'utf8', env: { ...process.env, MEDVAULT_CONFIG: '' } });
}

/** Human output: no control character but the line breaks between lines, every name escaped. */
function expectSafe(stdout: string, names: string[]): void {
  expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  for (const line of stdout.split('\n')) expect(line).not.toMatch(/^restored: all files verified/);
  for (const n of names) expect(stdout).toContain(n);
}

async function site(): Promise<{ dir: string; c: string[] }> {
  const dir = await tempDir('mv-names-');
  const src = join(dir, 'src');
  mkdirSync(join(src, FOLDER), { recursive: true });
  writeFileSync(join(src, BREAK), 'visit note');
  writeFileSync(join(src, TITLE), randomBytes(300_000)); // the largest pack's middle is in this file
  writeFileSync(join(src, TAB), 'tab');
  writeFileSync(join(src, DEL), 'del');
  writeFileSync(join(src, FOLDER, 'x.dcm'), 'dicom');
  const rk = run('recovery-key', 'generate', '--out', join(dir, 'recovery.key'), '--json');
  const publicKey = JSON.parse(rk.stdout).publicKey as string;
  const config = join(dir, 'agent.toml');
  writeFileSync(config, [`site = "clinic-n"`, `state_dir = "${dir}/state"`, `key_file = "${dir}/local.key"`, `recovery_public_key = "${publicKey}"`, `[[disks]]`, `path = "${dir}/disk1"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "${src}"`].join('\n'));
  const c = ['--config', config];
  expect(run(...c, 'init').status).toBe(0);
  return { dir, c };
}

describe('names with control characters in human output', () => {
  it('ls, restore refusing files that exist, and check --read-data of a damaged file show them escaped', async () => {
    const { dir, c } = await site();
    const first = run(...c, 'backup', 'records', '--json');
    expect(first.status, first.stdout + first.stderr).toBe(0);

    const ls = run(...c, 'ls', 'latest');
    expect(ls.status, ls.stderr).toBe(0);
    expectSafe(ls.stdout, shown);
    expect(ls.stdout.trim().split('\n')).toHaveLength(6); // 5 files and the folder, one line each

    const target = join(dir, 'target');
    expect(run(...c, 'restore', 'latest', '--target', target, '--json').status).toBe(0);
    expect(readFileSync(join(target, BREAK), 'utf8')).toBe('visit note'); // restored under the raw name
    const again = run(...c, 'restore', 'latest', '--target', target);
    expect(again.status).not.toBe(0);
    expectSafe(again.stdout, shown);
    expect(again.stdout).toContain('5 of the snapshot');

    flipByteInLargestPack(join(dir, 'disk1'));
    const check = run(...c, 'check', '--read-data');
    expect(check.status).not.toBe(0);
    expectSafe(check.stdout, ['affects snapshot', shown[1]!]);
  }, 60_000);

  it('--json carries the escaped display form, as exact JSON', async () => {
    const { c } = await site();
    expect(run(...c, 'backup', 'records', '--json').status).toBe(0);
    const ls = run(...c, 'ls', 'latest', '--json');
    expect(ls.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(ls.stdout).entries.map((e: { path: string }) => e.path).sort()).toEqual([...shown, 'scan\\r2024'].sort());
  }, 60_000);

  it('an unchanged file with such a name is not read or stored again by the next backup', async () => {
    const { dir, c } = await site();
    expect(run(...c, 'backup', 'records', '--json').status).toBe(0);
    const cache = join(dir, 'state', 'cache');
    // with the walk cache, then without it (each node compared with its parent snapshot's)
    for (const dropCache of [false, true]) {
      if (dropCache) for (const f of readdirSync(cache).filter((n) => n.endsWith('.walk'))) rmSync(join(cache, f), { recursive: true });
      const next = run(...c, 'backup', 'records', '--json');
      expect(next.status, next.stderr).toBe(0);
      const r = JSON.parse(next.stdout).results[0];
      expect(r.summary).toMatchObject({ files: 5, reused: 5, newBytes: 0 });
      expect(r.written, `walk cache dropped: ${dropCache}`).toBe(1); // the snapshot file alone: no pack, no tree
    }
  }, 60_000);
});
