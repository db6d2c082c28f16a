/**
 * The kill-point harness (test and soak only): runs an agent command in a child process, kills it
 * at each named fault point it passes (MEDVAULT_FAULTS=at=n), and after each kill proves that
 *
 * 1. the repository checks clean (structure and every byte: check --read-data),
 * 2. every snapshot committed before the command is still there and restores byte for byte,
 * 3. the same command, run again without faults, completes; then tmp/ is empty (leftovers swept),
 *    the repository checks clean, and it is no bigger than after an uninterrupted run plus one
 *    pack (what the killed run wrote was reused, not written twice).
 *
 * Each point runs in its own copy of the prepared state, two at a time (both cores).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdir, writeFile, readdir, readFile, rm, cp, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DirStore } from '../store/dir-store.js';
import { Repository } from './repository.js';
import { Checker } from '../check/checker.js';
import { Restorer } from '../restore/restorer.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { PACK_TARGET } from './writer.js';
import { Archiver } from '../backup/archiver.js';

export interface Step {
  /** Shown in reports. */
  name: string;
  /** Arguments after `--config FILE`. */
  args: string[];
  /** Changes the source before the step runs (deterministic, from `seed`). */
  mutate?: (src: string, seed: number) => Promise<void>;
  /** For forget steps: the committed snapshots (oldest first) that MUST survive; default all. */
  survivors?: (committed: string[]) => string[];
}

export interface HarnessOptions {
  /** A scratch folder (emptied). */
  work: string;
  /** The agent's entry (`dist/bundle/main.js`, what its launcher runs). */
  entry: string;
  steps: Step[];
  /** Run only these point numbers of each step (default: every point). */
  pick?: (points: number, step: Step) => number[];
  parallel?: number;
  onPoint?: (r: PointResult) => void;
  /** Extra environment of every child (MEDVAULT_PACK_TARGET and the like). */
  env?: Record<string, string>;
  /**
   * Runs the step again after a kill without a child process (faster); returns why it failed, or
   * undefined. Default: the same command in a child.
   */
  rerun?: (site: SiteDirs, src: string, step: Step) => Promise<string | undefined>;
}

export interface SiteDirs {
  disk: string;
  state: string;
  localKeyFile: string;
}

/** Re-runs a backup step in this process: the same Archiver the CLI uses. */
export async function rerunBackup(site: SiteDirs, src: string, step: Step): Promise<string | undefined> {
  if (step.args[0] !== 'backup') return `cannot re-run ${step.args[0]} in process`;
  const repo = await openRepo(site);
  try {
    const r = await new Archiver(repo).backup({ store: 'records', source: src, job: step.args.includes('--full') ? 'full' : 'incremental' });
    return r.partial ? `partial: ${JSON.stringify(r.errors.slice(0, 2))}` : undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await repo.close();
  }
}

export interface PointResult {
  step: string;
  point: number;
  name: string;
  ok: boolean;
  /** The run ended before reaching this point (a run may pass a few points fewer than the reference). */
  skipped?: boolean;
  why?: string;
}

export interface HarnessResult {
  /** Points at which a run was killed and then verified. */
  points: number;
  /** Points the killed run never reached (it finished first). */
  skipped: number;
  failures: PointResult[];
  perStep: { step: string; points: number; run: number }[];
}

/** Deterministic bytes: a SHA-256 counter stream. */
export function prng(seed: string, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0, o = 0; o < n; i++, o += 32) createHash('sha256').update(`${seed}:${i}`).digest().copy(out, o);
  return out;
}

/** A small clinic-like source: JSON records, a few binary documents, nested folders. */
export async function writeSource(src: string, seed: number, files = 40): Promise<void> {
  await mkdir(join(src, 'fhir'), { recursive: true });
  await mkdir(join(src, 'docs', 'scans'), { recursive: true });
  for (let i = 0; i < files; i++) {
    const big = i % 4 === 0;
    const dir = big ? join(src, 'docs', 'scans') : join(src, 'fhir');
    const bytes = big ? prng(`${seed}/${i}`, 60_000 + ((i * 7919) % 90_000)) : Buffer.from(JSON.stringify({ resourceType: 'Observation', id: `${seed}-${i}`, note: prng(`${seed}/${i}`, 2000 + i * 50).toString('base64') }));
    await writeFile(join(dir, `${big ? 'scan' : 'obs'}-${i}.${big ? 'bin' : 'json'}`), bytes);
  }
}

/** Adds a new folder of `files` records and documents (a first backup of them writes many packs). */
export async function addFolder(src: string, seed: number, files = 40): Promise<void> {
  await writeSource(join(src, `batch-${seed}`), seed, files);
}

/** A deterministic 10% change: rewrites some files, adds some. */
export async function changeSource(src: string, seed: number): Promise<void> {
  const names = (await readdir(join(src, 'fhir'))).sort();
  for (let i = 0; i < names.length; i += 10) await writeFile(join(src, 'fhir', names[i]!), prng(`change ${seed} ${i}`, 5000).toString('hex'));
  await writeFile(join(src, 'docs', `added-${seed}.bin`), prng(`added ${seed}`, 150_000));
}

async function manifest(dir: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await manifest(dir, p)) out.set(k, v);
    else out.set(p, createHash('sha256').update(await readFile(join(dir, p))).digest('hex'));
  }
  return out;
}

async function du(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += (await stat(join(e.parentPath, e.name))).size;
  return n;
}

function run(entry: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { env: { ...process.env, MEDVAULT_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

/** Creates config, keys, repository and a first committed snapshot in `dir`. */
export async function prepareSite(dir: string, entry: string, env: Record<string, string>): Promise<{ config: string; disk: string; state: string; src: string; localKeyFile: string }> {
  const rk = await generateRecoveryKeyPair();
  const src = join(dir, 'src');
  await writeSource(src, 1);
  const config = join(dir, 'agent.toml');
  await writeFile(config, [`site = "clinic-a"`, `state_dir = "state"`, `key_file = "local.key"`, `recovery_public_key = "${rk.publicKey}"`, `[[disks]]`, `path = "disk"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "src"`].join('\n'));
  for (const args of [['init'], ['backup', 'records']]) {
    const r = await run(entry, ['--config', config, '--json', ...args], env);
    if (r.code !== 0) throw new Error(`prepare: ${args.join(' ')} exited ${r.code}: ${r.out}`);
  }
  return { config, disk: join(dir, 'disk'), state: join(dir, 'state'), src, localKeyFile: join(dir, 'local.key') };
}

async function openRepo(site: { disk: string; state: string; localKeyFile: string }): Promise<Repository> {
  const localKey = await readFile(site.localKeyFile);
  return Repository.open(new DirStore(site.disk), { localKey }, { cacheDir: join(site.state, 'cache'), label: site.disk });
}

/** Check clean (read data), and every snapshot in `expect` restores to its manifest. */
async function verify(site: { disk: string; state: string; localKeyFile: string }, scratch: string, expect: Map<string, Map<string, string>>): Promise<string | undefined> {
  const repo = await openRepo(site);
  try {
    const c = await new Checker(repo).check({ readData: true });
    if (!c.ok) return `check: ${JSON.stringify(c.damaged.slice(0, 3))} ${JSON.stringify(c.affected.slice(0, 3))}`;
    const have = new Set((await repo.snapshots()).map((s) => s.hash));
    for (const [hash, want] of expect) {
      if (!have.has(hash)) return `committed snapshot ${hash.slice(0, 12)} is gone`;
      const target = join(scratch, `restore-${hash.slice(0, 8)}`);
      const r = await new Restorer(repo).restore({ snapshot: hash, paths: [], target, mode: 'new' });
      if (r.failed.length > 0) return `restore of ${hash.slice(0, 12)}: ${r.failed.slice(0, 3).join(', ')}`;
      const got = await manifest(target);
      if (got.size !== want.size || [...want].some(([k, v]) => got.get(k) !== v)) return `restore of ${hash.slice(0, 12)} differs from the source`;
      await rm(target, { recursive: true, force: true });
    }
    return undefined;
  } finally {
    await repo.close();
  }
}

/**
 * Runs every step of `o.steps` in sequence on one prepared site; for each step, counts its fault
 * points, then kills it at each selected point in a copy of the state before the step.
 */
export async function runHarness(o: HarnessOptions): Promise<HarnessResult> {
  await rm(o.work, { recursive: true, force: true });
  await mkdir(o.work, { recursive: true });
  const env = o.env ?? {};
  const base = join(o.work, 'base');
  await mkdir(base);
  const site = await prepareSite(base, o.entry, env);
  const expect = new Map<string, Map<string, string>>();
  {
    const repo = await openRepo(site);
    const snaps = await repo.snapshots();
    await repo.close();
    expect.set(snaps[snaps.length - 1]!.hash, await manifest(site.src));
  }
  const result: HarnessResult = { points: 0, skipped: 0, failures: [], perStep: [] };
  for (const [si, step] of o.steps.entries()) {
    await step.mutate?.(site.src, si + 2);
    const args = ['--config', site.config, '--json', ...step.args];
    // a reference run with the point log: how many points, which names, and the size it leaves
    const ref = join(o.work, `ref-${si}`);
    await cp(base, ref, { recursive: true });
    const log = join(o.work, `points-${si}.log`);
    const refRun = await run(o.entry, args.map((a) => a.replace(base, ref)), { ...env, MEDVAULT_FAULTS: `log=${log}` });
    if (refRun.code !== 0) throw new Error(`step ${step.name}: reference run exited ${refRun.code}: ${refRun.out}`);
    const names = existsSync(log) ? (await readFile(log, 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(1).join(' ')) : [];
    const refSize = await du(join(ref, 'disk', 'data'));
    await rm(ref, { recursive: true, force: true });
    const picked = o.pick ? o.pick(names.length, step) : names.map((_, i) => i + 1);
    result.perStep.push({ step: step.name, points: names.length, run: picked.length });

    const one = async (point: number): Promise<PointResult> => {
      const name = names[point - 1] ?? '?';
      const dir = join(o.work, `s${si}-p${point}`);
      const r: PointResult = { step: step.name, point, name, ok: false };
      const t0 = Date.now();
      const t = { kill: 0, verify1: 0, rerun: 0, verify2: 0 };
      try {
        await cp(base, dir, { recursive: true });
        const s = { disk: join(dir, 'disk'), state: join(dir, 'state'), localKeyFile: join(dir, 'local.key') };
        const here = args.map((a) => a.split(base).join(dir));
        const killed = await run(o.entry, here, { ...env, MEDVAULT_FAULTS: `at=${point}` });
        if (killed.signal !== 'SIGKILL') {
          // backups overlap their I/O, so a run may pass a few points fewer than the reference did
          if (killed.code === 0) r.skipped = true;
          r.why = `not killed (exit ${killed.code}): ${killed.out.slice(0, 300)}`;
          return r;
        }
        t.kill = Date.now() - t0;
        const must = step.survivors ? new Map(step.survivors([...expect.keys()]).map((h) => [h, expect.get(h)!])) : expect;
        const v1 = await verify(s, dir, must);
        t.verify1 = Date.now() - t0 - t.kill;
        if (v1) {
          r.why = `after the kill: ${v1}`;
          return r;
        }
        const again = o.rerun && step.args[0] === 'backup' ? await o.rerun(s, join(dir, 'src'), step) : await run(o.entry, here, env).then((x) => (x.code === 0 ? undefined : `exited ${x.code}: ${x.out.slice(0, 300)}`));
        if (again) {
          r.why = `the next run failed: ${again}`;
          return r;
        }
        t.rerun = Date.now() - t0 - t.kill - t.verify1;
        const left = await readdir(join(s.disk, 'tmp'));
        if (left.length > 0) {
          r.why = `leftovers in tmp/: ${left.join(', ')}`;
          return r;
        }
        const v2 = await verify(s, dir, new Map());
        if (v2) {
          r.why = `after the next run: ${v2}`;
          return r;
        }
        const size = await du(join(s.disk, 'data'));
        if (size > refSize + 2 * PACK_TARGET + 65536) {
          r.why = `repository holds ${size} bytes of packs, an uninterrupted run ${refSize}: work was not reused`;
          return r;
        }
        r.ok = true;
        t.verify2 = Date.now() - t0 - t.kill - t.verify1 - t.rerun;
        if (process.env.MV_HARNESS_TIMING) console.log(JSON.stringify(t));
        return r;
      } catch (err) {
        r.why = `harness: ${(err as Error).stack ?? err}`;
        return r;
      } finally {
        if (r.ok || !process.env.MV_HARNESS_KEEP) await rm(dir, { recursive: true, force: true });
        o.onPoint?.(r);
      }
    };
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < picked.length; i = next++) {
        const r = await one(picked[i]!);
        if (r.skipped) result.skipped++;
        else {
          result.points++;
          if (!r.ok) result.failures.push(r);
        }
      }
    };
    await Promise.all(Array.from({ length: o.parallel ?? 2 }, worker));

    // commit the step on the base state, so the next step starts from it
    const done = await run(o.entry, args, env);
    if (done.code !== 0) throw new Error(`step ${step.name}: exited ${done.code}: ${done.out}`);
    const repo = await openRepo(site);
    const snaps = await repo.snapshots();
    await repo.close();
    const latest = snaps[snaps.length - 1];
    if (latest && !expect.has(latest.hash) && step.args[0] === 'backup') expect.set(latest.hash, await manifest(site.src));
    for (const h of [...expect.keys()]) if (!snaps.some((s) => s.hash === h)) expect.delete(h); // forgotten on purpose
  }
  return result;
}

/**
 * Builds the agent into a private folder (so a concurrent `tsc` elsewhere cannot tear it) and
 * bundles it as `npm run build` does (agent/bundle.mjs); returns the bundle's main.js, what the
 * launcher runs. The tsc build info sits where the launcher looks for it (`../tsconfig.tsbuildinfo`).
 */
export function buildAgent(root: string): string {
  const out = join(root, 'node_modules', '.cache', 'medvault-crash', 'dist');
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'agent'), '--outDir', out, '--tsBuildInfoFile', join(out, '..', 'tsconfig.tsbuildinfo'), '--declaration', 'false', '--declarationMap', 'false'], { stdio: 'pipe' });
  } catch {
    // type errors (someone's work in progress) still emit JavaScript
  }
  if (!existsSync(join(out, 'main.js'))) throw new Error(`could not build the agent into ${out}`);
  execFileSync(process.execPath, [join(root, 'agent', 'bundle.mjs'), out], { stdio: 'pipe' });
  return join(out, 'bundle', 'main.js');
}
