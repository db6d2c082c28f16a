/**
 * Benchmark section `rpo` (issue 5): with a real agent daemon in continuous mode and a real
 * controller, 1,000 records are written over a minute; for each, the delay from its write to the
 * first committed local snapshot holding it, and to that snapshot being fully off site (every
 * object it needs receipted by the controller). Reports median and p95 of both.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fleet, must } from '../test/support/fleet.js';
import { until } from '../test/support/procs.js';
import { loadConfig } from '../agent/src/config.js';
import { DirStore } from '../agent/src/store/dir-store.js';
import { Repository } from '../agent/src/repo/repository.js';
import { readLocalKey } from '../agent/src/crypto/local-key.js';
import { Journal } from '../agent/src/state/journal.js';
import type { Receipt } from '@medvault/protocol';
import { quantile } from './stats.js';

export interface RpoResult {
  writes: number;
  seconds: number;
  snapshots: number;
  local_p50_s: number;
  local_p95_s: number;
  offsite_p50_s: number;
  offsite_p95_s: number;
  missing: number;
}


export async function runRpo(o: { writes?: number; seconds?: number; say?: (l: string) => void } = {}): Promise<RpoResult> {
  const writes = o.writes ?? 1000;
  const seconds = o.seconds ?? 60;
  const say = o.say ?? (() => {});
  const ws = mkdtempSync(join(tmpdir(), 'mv-bench-rpo-'));
  const store = join(ws, 'clinic', 'records');
  mkdirSync(join(store, 'fhir'), { recursive: true });
  for (let i = 0; i < 200; i++) writeFileSync(join(store, 'fhir', `existing-${i}.json`), JSON.stringify({ resourceType: 'Observation', id: i, pad: 'x'.repeat(2000) }));
  const fleet = await Fleet.start({ ws, site: 'bench-rpo', store, restoreRoots: [join(ws, 'restore')], storeLines: ['continuous = true', 'rpo_s = 60'] });
  try {
    must(await fleet.agent('backup', 'records', '--full'), 'backup');
    fleet.startAgent();
    await until('the watcher', async () => ((await fleet.agent('status')).json?.stores?.[0]?.watcher?.state === 'watching' ? true : undefined), 30_000);
    say(`rpo: writing ${writes} records over ${seconds} s with the agent in continuous mode`);
    const written = new Map<string, number>();
    const t0 = Date.now();
    for (let i = 0; i < writes; i++) {
      const due = t0 + (i * seconds * 1000) / writes;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const name = `fhir/new-${i}.json`;
      writeFileSync(join(store, name), JSON.stringify({ resourceType: 'Observation', id: `new-${i}`, value: i }));
      written.set(name, Date.now());
    }
    // Let the last writes settle into a snapshot and off site.
    const cfg = loadConfig(fleet.config);
    const disk = cfg.disks[0]!.path;
    const open = async () => Repository.open(new DirStore(disk), { localKey: await readLocalKey(cfg.key_file) }, { label: disk });
    const contains = async (repo: Repository, snap: string) => {
      const root = await repo.loadTree((await repo.loadSnapshot(snap)).tree);
      const fhir = root.find((n) => n.display === 'fhir');
      return new Set(fhir?.subtree ? (await repo.loadTree(fhir.subtree)).map((n) => `fhir/${n.display}`) : []);
    };
    await until('the last record in a snapshot, off site', async () => {
      const repo = await open();
      try {
        const last = (await repo.snapshots()).pop();
        if (!last || !(await contains(repo, last.hash)).has(`fhir/new-${writes - 1}.json`)) return undefined;
        const receipts = new Set(Journal.read<Receipt>(join(cfg.state_dir, 'receipts.jsonl')).map((r) => r.hash));
        return (await repo.snapshotObjects(last.hash)).every((x) => receipts.has(x.hash)) ? true : undefined;
      } finally {
        await repo.close();
      }
    }, 120_000, 500);
    const repo = await open();
    try {
      const receipts = new Map(Journal.read<Receipt>(join(cfg.state_dir, 'receipts.jsonl')).map((r) => [r.hash, r.storedAt]));
      const snaps = (await repo.snapshots()).filter((s) => s.job === 'continuous');
      const firstSeen = new Map<string, { local: number; offsite: number }>();
      for (const s of snaps) {
        const committed = statSync(join(disk, 'snapshots', s.hash)).mtimeMs;
        const offsite = Math.max(...(await repo.snapshotObjects(s.hash)).map((x) => receipts.get(x.hash) ?? Infinity));
        for (const f of await contains(repo, s.hash)) if (written.has(f) && !firstSeen.has(f)) firstSeen.set(f, { local: committed, offsite });
      }
      const local: number[] = [];
      const off: number[] = [];
      for (const [f, t] of written) {
        const seen = firstSeen.get(f);
        if (!seen) continue;
        local.push((seen.local - t) / 1000);
        off.push((seen.offsite - t) / 1000);
      }
      return {
        writes, seconds, snapshots: snaps.length, missing: writes - local.length,
        local_p50_s: quantile(local, 0.5), local_p95_s: quantile(local, 0.95), offsite_p50_s: quantile(off, 0.5), offsite_p95_s: quantile(off, 0.95),
      };
    } finally {
      await repo.close();
    }
  } finally {
    await fleet.stop();
    rmSync(ws, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('rpo.ts')) {
  const r = await runRpo({ say: (l) => console.log(l) });
  console.log(JSON.stringify({ rpo: r }));
}
