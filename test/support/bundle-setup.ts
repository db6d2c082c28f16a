/**
 * vitest globalSetup: the tests run the agent as its launcher does, from agent/dist/bundle (see
 * agent/bundle.mjs). After a bare `tsc -b` that bundle is older than the tsc build, so it is made
 * again here, once, before any test starts (not during the run: tests are reading it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './procs.js';

export default function setup(): void {
  const tsc = join(ROOT, 'agent', 'tsconfig.tsbuildinfo');
  const main = join(ROOT, 'agent', 'dist', 'bundle', 'main.js');
  if (!existsSync(join(ROOT, 'agent', 'dist', 'main.js'))) return; // not built: the tests that run it say so
  if (existsSync(main) && !(existsSync(tsc) && statSync(tsc).mtimeMs > statSync(main).mtimeMs)) return;
  execFileSync(process.execPath, [join(ROOT, 'agent', 'bundle.mjs')], { stdio: 'inherit' });
}
