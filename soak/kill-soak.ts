/**
 * soak/: the long kill-point run (`npm run soak [-- --json] [-- --points N]`). Kills the agent at
 * every fault point of a series of backups (new data, changes, full rereads) and of forget+prune,
 * in rounds with different data, until at least N points (default 500) ran; after each kill the
 * repository must check clean, every committed snapshot must restore, and the next run must
 * complete reusing what was written. Prints the count of points and failures; with --json the last
 * line is {"points":N,"failures":N,...}. Exit 0 only with no failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runHarness, buildAgent, addFolder, changeSource, rerunBackup, type Step, type PointResult } from '../agent/src/repo/crash-harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const want = Number(args[args.indexOf('--points') + 1]) > 0 && args.includes('--points') ? Number(args[args.indexOf('--points') + 1]) : 500;
const say = (s: string) => process.stdout.write(`${s}\n`);

execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', join(root, 'protocol')], { stdio: 'inherit' });
const entry = buildAgent(root);
const started = Date.now();
const base = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/mv-soak-') : await mkdtemp(join(tmpdir(), 'mv-soak-'));
let points = 0;
let skipped = 0;
const failures: PointResult[] = [];
const rounds: { round: number; points: number; failures: number; seconds: number }[] = [];
try {
  for (let round = 1; points < want; round++) {
    const t0 = Date.now();
    const steps: Step[] = [
      { name: 'backup of a new folder', args: ['backup', 'records'], mutate: (src, seed) => addFolder(src, seed * 100 + round, 40) },
      { name: 'incremental after a change', args: ['backup', 'records'], mutate: (src, seed) => changeSource(src, seed * 100 + round) },
      { name: 'full backup', args: ['backup', 'records', '--full'], mutate: (src, seed) => addFolder(src, seed * 1000 + round, 12) },
      { name: 'forget --keep-last 2 --prune', args: ['forget', '--keep-last', '2', '--prune'], survivors: (c) => c.slice(-2) },
    ];
    const r = await runHarness({
      work: join(base, `round-${round}`),
      entry,
      env: { MEDVAULT_PACK_TARGET: String(64 * 1024), MEDVAULT_PACKS_PER_INDEX: '4' },
      rerun: rerunBackup,
      steps,
      onPoint: (p) => {
        if (!p.ok && !p.skipped && !json) say(`FAIL round ${round} ${p.step} point ${p.point} (${p.name}): ${p.why}`);
      },
    });
    points += r.points;
    skipped += r.skipped;
    failures.push(...r.failures);
    rounds.push({ round, points: r.points, failures: r.failures.length, seconds: Math.round((Date.now() - t0) / 1000) });
    say(`round ${round}: ${r.points} points (${r.perStep.map((s) => `${s.step} ${s.run}`).join(', ')}), ${r.failures.length} failures, ${r.skipped} not reached; total ${points}`);
    await rm(join(base, `round-${round}`), { recursive: true, force: true });
  }
} finally {
  await rm(base, { recursive: true, force: true });
}
say(`medvault soak: ${points} kill points, ${failures.length} failures, ${skipped} not reached, ${Math.round((Date.now() - started) / 1000)} s`);
if (json) say(JSON.stringify({ points, failures: failures.length, skipped, seconds: Math.round((Date.now() - started) / 1000), rounds, failed: failures.slice(0, 20) }));
process.exit(failures.length === 0 && points >= want ? 0 : 1);
