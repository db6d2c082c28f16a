#!/usr/bin/env node
/**
 * `node agent/bundle.mjs [DIST]`: the agent as it runs, `DIST/bundle/main.js` (default agent/dist),
 * made by esbuild from tsc's output in DIST (tsc -b stays the compiler and the type check; esbuild
 * only joins its modules). Why: node 20 loads ES modules one file at a time, and a backup loaded
 * ~216 files (95 of them zod's) at every start; joined, a no-change incremental of the bench data
 * set took ~0.1 s less CPU and wall (README "Benchmark").
 *
 * Joined: the agent's own modules, @medvault/protocol and the pure-JS packages every command
 * starts with (BUNDLED). Every other package stays a normal import from node_modules: native
 * addons (found beside their own files), and packages that find files beside their own
 * (pino's transports, systeminformation). Each command stays its own chunk, loaded when run
 * (main.ts), and the crypto pool's thread is an entry of its own (`pool-worker.js` beside the
 * chunks: crypto/pool.ts starts it by a URL relative to its own module).
 *
 * The bundle replaces the previous one whole (a new folder renamed into place). bin/medvault-agent
 * refuses a bundle older than the tsc build beside it (DIST/../tsconfig.tsbuildinfo), so a stale
 * bundle never runs in place of the code just compiled: `npm run build` runs both.
 */
import { build } from 'esbuild';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, 'dist'));
const out = join(dist, 'bundle');

/** Packages joined into the bundle; every other bare import stays external. */
const BUNDLED = new Set(['@medvault/protocol', 'zod', 'commander', 'smol-toml', 'croner']);
const packageOf = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

for (const f of ['main.js', 'crypto/pool-worker.js']) if (!existsSync(join(dist, f))) throw new Error(`${join(dist, f)} missing: run tsc -b first`);
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
await build({
  entryPoints: { main: join(dist, 'main.js'), 'pool-worker': join(dist, 'crypto', 'pool-worker.js') },
  outdir: tmp,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  sourcemap: true,
  logLevel: 'warning',
  // bundled CommonJS (commander) calls require() for node's own modules
  banner: { js: "import { createRequire as __mvCreateRequire } from 'node:module'; const require = __mvCreateRequire(import.meta.url);" },
  plugins: [
    {
      name: 'external-packages',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('node:') || BUNDLED.has(packageOf(a.path)) ? undefined : { path: a.path, external: true }));
      },
    },
  ],
});
// another build of the same folder may swap its bundle in meanwhile (the crash test and the bench
// both build the private copy): whichever lands, it is a bundle of this tsc output
const old = `${out}.old-${process.pid}`;
const tolerate = (f, ...codes) => {
  try {
    f();
  } catch (err) {
    if (!codes.includes(err.code)) throw err;
  }
};
tolerate(() => renameSync(out, old), 'ENOENT');
tolerate(() => renameSync(tmp, out), 'ENOTEMPTY', 'EEXIST');
rmSync(tmp, { recursive: true, force: true });
rmSync(old, { recursive: true, force: true });
