import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tempDir } from './testing.js';
import { writeFile } from 'node:fs/promises';
import { runHarness, buildAgent, addFolder, changeSource, rerunBackup, prng } from './crash-harness.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('kill-point harness', () => {
  let entry: string;
  beforeAll(() => {
    entry = buildAgent(root);
  }, 180_000);

  it('after a kill at each of 100+ fault points of a backup: last snapshot intact, check clean, leftovers swept, the next run completes reusing what was written', async () => {
    const work = join(existsSync('/dev/shm') ? await mkdtemp('/dev/shm/mv-crash-') : await tempDir('mv-crash-'), 'work'); // tmpfs: fsync is free, the kills are what we test
    const r = await runHarness({
      work,
      entry,
      env: { MEDVAULT_PACK_TARGET: String(56 * 1024), MEDVAULT_PACKS_PER_INDEX: '4' },
      rerun: rerunBackup,
      steps: [
        { name: 'backup of a changed store with a new folder', args: ['backup', 'records'], mutate: async (src, seed) => (await changeSource(src, seed), await addFolder(src, seed, 50)) },
      ],
    });
    console.log(`kill-point harness: ${r.points} points killed, ${r.skipped} not reached (${r.perStep.map((s) => `${s.step}: ${s.run}/${s.points}`).join('; ')}), ${r.failures.length} failures`);
    expect(r.failures.slice(0, 5)).toEqual([]);
    expect(r.points).toBeGreaterThanOrEqual(100);
  }, 300_000);

  it('after a kill at each fault point of a backup whose packs are written with O_DIRECT: the same guarantees', async () => {
    const work = join(await tempDir('mv-crash-direct-'), 'work'); // the machine's own disk: O_DIRECT and real fsyncs
    const killedAt: string[] = [];
    const r = await runHarness({
      work,
      entry,
      env: { MEDVAULT_PACK_TARGET: String(1 << 20), MEDVAULT_PACKS_PER_INDEX: '2' },
      rerun: rerunBackup,
      onPoint: (p) => void (p.skipped || killedAt.push(p.name)),
      steps: [
        {
          name: 'backup of three new scans of 1.2-1.6 MB (packs of 1 MiB and more)',
          args: ['backup', 'records'],
          mutate: async (src, seed) => {
            for (let i = 0; i < 3; i++) await writeFile(join(src, 'docs', `scan-${seed}-${i}.bin`), prng(`scan ${seed} ${i}`, 1_200_000 + i * 200_000));
          },
        },
      ],
    });
    const direct = killedAt.filter((n) => n.endsWith('(direct)'));
    console.log(`kill-point harness, direct writes: ${r.points} points killed (${direct.length} inside a direct write), ${r.skipped} not reached, ${r.failures.length} failures`);
    expect(r.failures.slice(0, 5)).toEqual([]);
    expect(direct.length).toBeGreaterThanOrEqual(8); // open, both halves and fsync of two packs at least (boundaries follow the repository key)
  }, 300_000);
});
