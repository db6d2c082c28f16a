/**
 * The programs' bins: every `bin` in a workspace's package.json points at a committed file (so `npm ci`
 * on a fresh clone, before any build, links it into node_modules/.bin and `npx` never asks the
 * registry), and each one runs its program once built.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/procs.js';

const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n'));

describe('bins', () => {
  for (const pkg of ['agent', 'controller']) {
    const { bin } = JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const [name, target] of Object.entries(bin)) {
      it(`${name} is a committed file that runs the built program`, () => {
        const file = join(pkg, target);
        expect(tracked.has(file), `${file} is not committed: npm ci cannot link ${name}`).toBe(true);
        const r = spawnSync(process.execPath, [join(ROOT, file), '--help'], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`Usage: ${name}\\b`));
      });
    }
  }
});
