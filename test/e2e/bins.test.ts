/**
 * The programs' bins: every `bin` in a workspace's package.json points at a committed, executable
 * file (so `npm ci` on a fresh clone, before any build, links it into node_modules/.bin and `npx`
 * never asks the registry), and each one runs its program once built, also through a symlink as
 * npm links it. The agent's bin is its launcher (agent/bin/medvault-agent): it execs node on
 * dist/bundle/main.js with its process settings first in GLIBC_TUNABLES and the caller's after
 * them, and refuses a bundle older than the tsc build beside it. Before a build, every bin says
 * to run `npm run build` and exits 2 (the controller's through bin/start-built.js).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/procs.js';

const files = execFileSync('git', ['ls-files', '-s'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
const mode = new Map(files.filter(Boolean).map((l) => [l.split('\t')[1]!, l.split(' ')[0]!]));
const work = mkdtempSync(join(tmpdir(), 'mv-bins-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('bins', () => {
  for (const pkg of ['agent', 'controller']) {
    const { bin } = JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const [name, target] of Object.entries(bin)) {
      it(`${name} is a committed executable that runs the built program, also through a symlink`, () => {
        const file = join(pkg, target);
        expect(mode.get(file), `${file} is not committed as an executable: npm ci cannot link ${name}`).toBe('100755');
        const link = join(work, name);
        symlinkSync(join(ROOT, file), link);
        for (const path of [join(ROOT, file), link]) {
          const r = spawnSync(path, ['--help'], { encoding: 'utf8' });
          expect(r.status, r.stderr).toBe(0);
          expect(r.stdout).toMatch(new RegExp(`Usage: ${name}\\b`));
        }
      });
    }
  }

  it('before npm run build, every bin says to run it and exits 2 (no ERR_MODULE_NOT_FOUND stack), also through a symlink', () => {
    // each package's bin folder copied beside no dist/: a fresh clone after npm ci
    for (const pkg of ['agent', 'controller']) {
      const { bin } = JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> };
      const copy = join(work, 'unbuilt', pkg);
      cpSync(join(ROOT, pkg, 'bin'), join(copy, 'bin'), { recursive: true });
      for (const [name, target] of Object.entries(bin)) {
        const link = join(work, 'unbuilt', `${name}-link`);
        symlinkSync(join(copy, target), link);
        for (const path of [join(copy, target), link]) {
          const r = spawnSync(path, ['--help'], { encoding: 'utf8' });
          expect([r.status, r.stdout], path).toEqual([2, '']);
          expect(r.stderr, path).toMatch(new RegExp(`^${name}: \\S+ is missing.*: run npm run build\\n$`));
        }
      }
    }
  });

  it('a partly built controller (a file of dist/ missing): its bins say which and to run npm run build, exit 2', () => {
    const copy = join(work, 'partial', 'controller');
    for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, 'controller', part), join(copy, part), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    for (const [bin, gone] of [['medvault-controller', 'config.js'], ['medvault', 'cli/prompt.js']] as const) {
      rmSync(join(copy, 'dist', gone));
      const r = spawnSync(join(copy, 'bin', `${bin}.js`), ['--help'], { encoding: 'utf8' });
      expect([r.status, r.stdout, r.stderr]).toEqual([2, '', `${bin}: ${join(copy, 'dist', gone)} is missing: run npm run build\n`]);
    }
  });

  it("the agent's launcher execs node on dist/bundle/main.js with its settings, the arguments as given, the caller's tunables last", () => {
    // a copy of the launcher beside a dist/bundle/main.js, and a `node` first in PATH that reports how it was run
    const agent = join(work, 'release', 'agent');
    mkdirSync(join(agent, 'bin'), { recursive: true });
    mkdirSync(join(agent, 'dist', 'bundle'), { recursive: true });
    writeFileSync(join(agent, 'dist', 'bundle', 'main.js'), '');
    cpSync(join(ROOT, 'agent', 'bin', 'medvault-agent'), join(agent, 'bin', 'medvault-agent'));
    chmodSync(join(agent, 'bin', 'medvault-agent'), 0o755);
    const fake = join(work, 'fake-node');
    mkdirSync(fake);
    writeFileSync(join(fake, 'node'), '#!/bin/sh\nprintf "%s\\n" "$$" "$GLIBC_TUNABLES" "$@"\n');
    chmodSync(join(fake, 'node'), 0o755);
    const launcher = join(agent, 'bin', 'medvault-agent');
    const script = readFileSync(launcher, 'utf8');
    const ours = /^GLIBC_TUNABLES=([^$\s]+)/m.exec(script)?.[1];
    expect(ours).toMatch(/^glibc\.malloc\./);
    const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
    const run = (extra: NodeJS.ProcessEnv) => spawnSync('sh', ['-c', 'echo $$; exec "$0" "$@"', launcher, '--config', 'a b.toml', 'backup', '$HOME'], { encoding: 'utf8', env: { ...env, ...extra } });

    const plain = run({ GLIBC_TUNABLES: undefined });
    expect(plain.status, plain.stderr).toBe(0);
    const [shellPid, nodePid, tunables, ...argv] = plain.stdout.trimEnd().split('\n');
    expect(nodePid, 'node replaces the launcher (exec): same process').toBe(shellPid);
    expect(tunables).toBe(ours);
    const main = argv.findIndex((a) => a.endsWith('main.js'));
    expect(resolve(argv[main]!)).toBe(join(agent, 'dist', 'bundle', 'main.js'));
    expect(argv.slice(main + 1)).toEqual(['--config', 'a b.toml', 'backup', '$HOME']);
    for (const a of argv.slice(0, main)) expect(script, 'node options before main.js: only those the launcher names').toContain(a);

    // started from its own folder by name (`sh medvault-agent`: $0 holds no slash)
    const here = spawnSync('sh', ['medvault-agent', 'x'], { cwd: join(agent, 'bin'), encoding: 'utf8', env });
    expect(resolve(join(agent, 'bin'), here.stdout.trimEnd().split('\n').at(-2)!)).toBe(join(agent, 'dist', 'bundle', 'main.js'));

    const caller = run({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=8' });
    expect(caller.stdout.split('\n')[2]).toBe(`${ours}:glibc.malloc.arena_max=8`);

    // a tsc build newer than the bundle (`tsc -b` without `npm run build`): refused, node never started
    writeFileSync(join(agent, 'tsconfig.tsbuildinfo'), '{}');
    utimesSync(join(agent, 'dist', 'bundle', 'main.js'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const stale = run({});
    expect(stale.status).toBe(2);
    expect(stale.stderr).toContain('run npm run build');
    expect(stale.stdout.trimEnd().split('\n')).toHaveLength(1); // the shell's pid alone: no node
    rmSync(join(agent, 'dist', 'bundle'), { recursive: true });
    expect(run({}).status, 'no bundle: refused').toBe(2);
  });
});
