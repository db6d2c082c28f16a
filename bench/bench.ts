/**
 * bench/: `npm run bench [-- --json] [-- --only engine|rpo|fleet|offsite] [-- --rounds N] [-- --scale F]`.
 *
 * The `engine` section builds a deterministic clinic-like data set (~1.5 GB at scale 1: ~20,000
 * FHIR-like JSON files of 1-20 KB, ~2,000 incompressible documents of 0.1-2 MB, ~40 imaging files
 * of 10-30 MB) and runs medvault and, where installed, restic and borg on it in the same run,
 * alternating their order each round: initial backup, incremental after a 1% change, incremental
 * with no change, full restore, check --read-data. It reports median seconds, MB/s, peak RSS and
 * repository size, and medvault's ratio to each peer as "times better" (peer ÷ medvault; above 1
 * means medvault wins). Every command starts after a `sync` (untimed), so no engine's writeback
 * lands in another's time; `restore_durable` adds the `sync` right after each restore (restic and
 * borg leave what they restored unsynced; medvault's restore ends with syncfs). Peers are installed with apt-get when missing and we are root; otherwise
 * they are skipped and the report says so. With --json the last line is one JSON object
 * {"engine": {...}}; other issues add their own sections to the same command. `--only scale` (not
 * part of the default run) backs up and restores 1 M tiny files and one 20 GiB file.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync, rmSync, readFileSync, openSync, writeSync, readSync, closeSync, statSync, copyFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { buildAgent } from '../agent/src/repo/crash-harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const json = argv.includes('--json');
const opt = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const only = opt('--only');
const rounds = Number(opt('--rounds') ?? 3);
const scale = Number(opt('--scale') ?? 1);
const work = opt('--dir') ?? join(root, '.bench');
/** `--engines medvault` (comma-separated) runs only those engines: quick before/after loops. */
const onlyEngines = opt('--engines')?.split(',');
const say = (s: string) => process.stdout.write(`${s}\n`);
const phases = ['initial_backup', 'incremental_1pct', 'incremental_none', 'restore', 'check_read_data'] as const;
type Phase = (typeof phases)[number];

/** Deterministic bytes from a seed: AES-256-CTR keystream (fast, incompressible). */
function stream(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}
/** A deterministic generator in [0, 1). */
function rng(seed: string): () => number {
  let i = 0;
  return () => createHash('sha256').update(`${seed}:${i++}`).digest().readUInt32LE(0) / 2 ** 32;
}

function fhir(i: number, r: () => number, version = 0): Buffer {
  const size = 1024 + Math.floor(r() * 19 * 1024);
  const words = ['glucose', 'mmol/L', 'final', 'Observation', 'Patient', 'hemoglobin', 'blood pressure', 'systolic', 'diastolic', 'amended', 'Practitioner', 'Encounter', 'laboratory'];
  const obj: Record<string, unknown> = { resourceType: 'Bundle', id: `b-${i}-${version}`, type: 'collection', entry: [] as unknown[] };
  let n = 0;
  const entries = obj.entry as unknown[];
  while (n < size) {
    const e = { resource: { resourceType: words[Math.floor(r() * 4) + 3], id: `${i}-${entries.length}`, status: words[2], subject: { reference: `Patient/${Math.floor(r() * 5000)}` }, code: { text: words[Math.floor(r() * words.length)] }, valueQuantity: { value: Math.round(r() * 10000) / 100, unit: words[1] }, note: stream(`${i}/${version}/${entries.length}`, 24).toString('base64') } };
    entries.push(e);
    n += JSON.stringify(e).length;
  }
  return Buffer.from(JSON.stringify(obj, null, 1));
}

interface Dataset {
  dir: string;
  bytes: number;
  files: number;
}

function buildDataset(dir: string): Dataset {
  const marker = join(dir, '.complete');
  const want = `scale ${scale} v1`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return { dir: join(dir, 'src'), ...JSON.parse(readFileSync(join(dir, '.size'), 'utf8')) };
  rmSync(dir, { recursive: true, force: true });
  const src = join(dir, 'src');
  const r = rng('medvault bench');
  let bytes = 0;
  let files = 0;
  const put = (p: string, b: Buffer) => {
    writeFileSync(p, b);
    bytes += b.length;
    files++;
  };
  const nJson = Math.round(20_000 * scale);
  for (let i = 0; i < nJson; i++) {
    const d = join(src, 'fhir', `patient-${String(i % 500).padStart(4, '0')}`);
    if (i < 500) mkdirSync(d, { recursive: true });
    put(join(d, `bundle-${i}.json`), fhir(i, r));
  }
  const nDocs = Math.round(2_000 * scale);
  mkdirSync(join(src, 'documents'), { recursive: true });
  for (let i = 0; i < nDocs; i++) put(join(src, 'documents', `scan-${i}.pdf`), stream(`doc ${i}`, Math.floor(100 * 1024 + 1.9 * 1024 * 1024 * r() ** 6)));
  const nImg = Math.max(1, Math.round(40 * scale));
  mkdirSync(join(src, 'imaging'), { recursive: true });
  for (let i = 0; i < nImg; i++) put(join(src, 'imaging', `ct-${i}.dcm`), stream(`img ${i}`, Math.floor((10 + 20 * r() ** 2) * 1024 * 1024)));
  writeFileSync(join(dir, '.size'), JSON.stringify({ bytes, files }));
  writeFileSync(marker, want);
  return { dir: src, bytes, files };
}

/** Changes ~1% of the data set (files and bytes), deterministically per round. */
function change(ds: Dataset, round: number): void {
  const r = rng(`change ${round}`);
  const nJson = Math.round(20_000 * scale);
  for (let k = 0; k < nJson / 100; k++) {
    const i = Math.floor(r() * nJson);
    writeFileSync(join(ds.dir, 'fhir', `patient-${String(i % 500).padStart(4, '0')}`, `bundle-${i}.json`), fhir(i, r, round));
  }
  const nDocs = Math.round(2_000 * scale);
  for (let k = 0; k < Math.max(1, nDocs / 200); k++) {
    const i = Math.floor(r() * nDocs);
    const p = join(ds.dir, 'documents', `scan-${i}.pdf`);
    writeFileSync(p, stream(`doc ${i} round ${round}`, statSync(p).size));
  }
  // an imaging file edited in the middle (1 MiB overwritten)
  const img = join(ds.dir, 'imaging', `ct-${round % Math.max(1, Math.round(40 * scale))}.dcm`);
  const fd = openSync(img, 'r+');
  writeSync(fd, stream(`img edit ${round}`, 1024 * 1024), 0, 1024 * 1024, Math.floor(statSync(img).size / 2));
  closeSync(fd);
}

interface Measure {
  seconds: number;
  rssKiB: number;
  /** The command's standard output. */
  out: string;
}

/** Runs a command under GNU time; returns wall seconds and peak RSS of the process tree's largest member. */
/**
 * Times one command. Everything written before it (the previous engine's restore, which restic and
 * borg leave unsynced, and the deletion of its target) is flushed first, untimed: otherwise its
 * writeback and discards land in the next engine's time, and in medvault's restore, whose syncfs
 * flushes the whole file system, entirely.
 */
function measure(cmd: string[], env: Record<string, string> = {}, cwd?: string): Measure {
  execFileSync('sync');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...cmd], { env: { ...process.env, ...env }, cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${(r.stderr ?? '').slice(-2000)} ${(r.stdout ?? '').slice(-1000)}`);
  const lines = r.stderr.trim().split('\n');
  return { seconds, rssKiB: Number(lines[lines.length - 1]), out: r.stdout };
}

function du(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
}

interface Engine {
  name: string;
  init(repo: string): void;
  backup(repo: string, src: string): string[];
  restore(repo: string, target: string): { cmd: string[]; cwd?: string };
  check(repo: string): string[];
  env: Record<string, string>;
  /** Its caches beside the repository (read back into the page cache with it before a restore). */
  caches(repo: string): string[];
}

/**
 * Before each restore, untimed: the page cache is dropped and the engine's repository and caches
 * are read back into it. This VM's ext4 has no journal, and without one each create scans the
 * inodes freed in the last ~30 s whose inode-table blocks are still cached: the previous engine's
 * `rm -rf` of its 22,000 restored files made the next restore 2-3 x slower, by an amount that
 * depended on where each engine's files landed rather than on the engine (README, Benchmark).
 * Dropping the cache (root only; as a remount would) gives every engine the same start: its
 * repository warm, the target's metadata cold. Returns false where it cannot be done.
 */
function settleForRestore(warm: string[]): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '1');
  } catch {
    return false;
  }
  for (const d of warm) if (existsSync(d)) spawnSync('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'warm', d]);
  return true;
}

/**
 * The agent as it is deployed: its launcher (agent/bin/medvault-agent, which sets the process's
 * start-up settings) put beside the private build whose bundle is `entry` (`…/dist/bundle/main.js`),
 * so the bench measures what runs.
 */
function launcher(entry: string): string {
  const bin = join(dirname(entry), '..', '..', 'bin', 'medvault-agent');
  mkdirSync(dirname(bin), { recursive: true });
  copyFileSync(join(root, 'agent', 'bin', 'medvault-agent'), bin);
  chmodSync(bin, 0o755);
  return bin;
}

function engines(entry: string, base: string): { list: Engine[]; skipped: string[] } {
  const agent = launcher(entry);
  const skipped: string[] = [];
  const have = (b: string) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0;
  const missing = ['restic', 'borg'].filter((b) => !have(b));
  if (missing.length > 0) {
    const root = process.getuid?.() === 0 && have('apt-get');
    if (root) {
      say(`bench: installing ${missing.join(', ')} with apt-get`);
      spawnSync('apt-get', ['install', '-y', ...missing.map((m) => (m === 'borg' ? 'borgbackup' : m))], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    }
  }
  const cfgFor = (repo: string) => join(repo, '..', `${repo.split('/').pop()}.toml`);
  const list: Engine[] = [
    {
      name: 'medvault',
      env: {},
      caches: (repo) => [`${repo}.state`],
      init(repo) {
        const rk = JSON.parse(execFileSync(agent, ['--json', 'recovery-key', 'generate', '--out', `${repo}.recovery`]).toString());
        writeFileSync(cfgFor(repo), [`site = "bench"`, `state_dir = "${repo}.state"`, `key_file = "${repo}.key"`, `recovery_public_key = "${rk.publicKey}"`, `[[disks]]`, `path = "${repo}"`, `[[stores]]`, `name = "records"`, `type = "files"`, `path = "${base}"`].join('\n'));
        execFileSync(agent, ['--config', cfgFor(repo), '--json', 'init']);
      },
      backup: (repo) => [agent, '--config', cfgFor(repo), '--json', 'backup', 'records'],
      restore: (repo, target) => ({ cmd: [agent, '--config', cfgFor(repo), '--json', 'restore', 'latest', '--target', target] }),
      check: (repo) => [agent, '--config', cfgFor(repo), '--json', 'check', '--read-data'],
    },
  ];
  if (have('restic')) {
    list.push({
      name: 'restic',
      env: { RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') },
      caches: () => [join(work, 'restic-cache')],
      init: (repo) => void execFileSync('restic', ['init', '--repo', repo], { env: { ...process.env, RESTIC_PASSWORD: 'bench' }, stdio: 'ignore' }),
      backup: (repo, src) => ['restic', '--repo', repo, 'backup', '--quiet', src],
      restore: (repo, target) => ({ cmd: ['restic', '--repo', repo, 'restore', 'latest', '--quiet', '--target', target] }),
      check: (repo) => ['restic', '--repo', repo, 'check', '--read-data', '--quiet'],
    });
  } else skipped.push('restic (not installed; apt-get install restic)');
  if (have('borg')) {
    list.push({
      name: 'borg',
      env: { BORG_PASSPHRASE: 'bench', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes', BORG_BASE_DIR: join(work, 'borg-base') },
      caches: () => [join(work, 'borg-base')],
      init: (repo) => void execFileSync('borg', ['init', '--encryption', 'repokey', repo], { env: { ...process.env, BORG_PASSPHRASE: 'bench', BORG_BASE_DIR: join(work, 'borg-base') }, stdio: 'ignore' }),
      backup: (repo, src) => ['borg', 'create', '--compression', 'auto,zstd,3', `${repo}::{now:%Y-%m-%dT%H:%M:%S.%f}`, src],
      restore: (repo, target) => {
        mkdirSync(target, { recursive: true });
        return { cmd: ['sh', '-c', `borg extract "${repo}::$(borg list --last 1 --short "${repo}")"`], cwd: target };
      },
      check: (repo) => ['borg', 'check', '--verify-data', repo],
    });
  } else skipped.push('borg (not installed; apt-get install borgbackup)');
  return { list, skipped };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function engineSection(): Promise<Record<string, unknown>> {
  const entry = buildAgent(root);
  mkdirSync(work, { recursive: true });
  say(`bench engine: building the data set (scale ${scale}) in ${work}/data …`);
  const ds = buildDataset(join(work, 'data'));
  const MB = ds.bytes / 1e6;
  say(`bench engine: ${ds.files} files, ${MB.toFixed(0)} MB`);
  const all = engines(entry, ds.dir);
  const list = all.list.filter((e) => !onlyEngines || onlyEngines.includes(e.name));
  const skipped = all.skipped;
  for (const s of skipped) say(`bench engine: skipping ${s}`);
  // restoreSync: seconds of a `sync` right after each restore (restic and borg leave what they restored in the page cache; medvault's restore ends with syncfs)
  const results: Record<string, Record<Phase, Measure[]> & { repoBytes: number[]; restoreSync: number[] }> = {};
  for (const e of list) results[e.name] = { initial_backup: [], incremental_1pct: [], incremental_none: [], restore: [], check_read_data: [], repoBytes: [], restoreSync: [] };
  const runs = join(work, 'runs');
  let unsettled = false;
  for (let round = 1; round <= rounds; round++) {
    rmSync(runs, { recursive: true, force: true });
    mkdirSync(runs, { recursive: true });
    // a fresh copy of the data per round (the 1% change edits it)
    const src = join(runs, 'src');
    execFileSync('cp', ['-a', ds.dir, src]);
    const order = list.map((_, i) => list[(i + round - 1) % list.length]!);
    const repo = (e: Engine) => join(runs, `repo-${e.name}`);
    for (const e of order) e.init(repo(e));
    const step = (phase: Phase, f: (e: Engine) => Measure) => {
      for (const e of order) {
        const m = f(e);
        results[e.name]![phase].push(m);
        say(`round ${round} ${phase.padEnd(17)} ${e.name.padEnd(8)} ${m.seconds.toFixed(2)} s, ${(MB / m.seconds).toFixed(0)} MB/s, peak RSS ${(m.rssKiB / 1024).toFixed(0)} MiB`);
      }
    };
    const fix = (e: Engine) => (e.name === 'medvault' ? (cmd: string[]) => cmd : (cmd: string[]) => cmd.map((c) => c.replace(ds.dir, src)));
    // medvault's config names the store path: point it at this round's copy
    for (const e of order) if (e.name === 'medvault') writeFileSync(join(runs, 'repo-medvault.toml'), readFileSync(join(runs, 'repo-medvault.toml'), 'utf8').replace(ds.dir, src));
    step('initial_backup', (e) => measure(fix(e)(e.backup(repo(e), src)), e.env));
    change({ ...ds, dir: src }, round);
    step('incremental_1pct', (e) => measure(fix(e)(e.backup(repo(e), src)), e.env));
    step('incremental_none', (e) => measure(fix(e)(e.backup(repo(e), src)), e.env));
    for (const e of order) results[e.name]!.repoBytes.push(du(repo(e)));
    step('restore', (e) => {
      const target = join(runs, `restore-${e.name}`);
      const { cmd, cwd } = e.restore(repo(e), target);
      if (!settleForRestore([repo(e), ...e.caches(repo(e))]) && !unsettled) {
        unsettled = true;
        say('bench: cannot drop the page cache (not root?), so each restore starts with the file system as the previous engine left it');
      }
      const m = measure(cmd, e.env, cwd);
      const t0 = process.hrtime.bigint();
      execFileSync('sync');
      results[e.name]!.restoreSync.push(Number(process.hrtime.bigint() - t0) / 1e9);
      rmSync(target, { recursive: true, force: true });
      return m;
    });
    step('check_read_data', (e) => measure(e.check(repo(e)), e.env));
  }
  rmSync(runs, { recursive: true, force: true });
  const summary: Record<string, Record<string, unknown>> = {};
  for (const [name, r] of Object.entries(results)) {
    const s: Record<string, unknown> = {};
    for (const p of phases) s[p] = { seconds: +median(r[p].map((m) => m.seconds)).toFixed(3), mb_s: +(MB / median(r[p].map((m) => m.seconds))).toFixed(1), peak_rss_mib: +(median(r[p].map((m) => m.rssKiB)) / 1024).toFixed(1) };
    s.peak_rss_mib = +(Math.max(...phases.flatMap((p) => r[p].map((m) => m.rssKiB))) / 1024).toFixed(1);
    s.repo_mb = +(median(r.repoBytes) / 1e6).toFixed(1);
    // the restore until what it wrote is on disk: restore + the sync after it
    s.restore_durable = { seconds: +median(r.restore.map((m, i) => m.seconds + r.restoreSync[i]!)).toFixed(3) };
    summary[name] = s;
  }
  const ratios: Record<string, Record<string, number>> = {};
  const mv = summary.medvault!;
  for (const peer of Object.keys(summary).filter((n) => n !== 'medvault')) {
    const p = summary[peer]!;
    const t = (x: Record<string, unknown>, ph: Phase) => (x[ph] as { seconds: number }).seconds;
    ratios[peer] = Object.fromEntries([...phases.map((ph) => [ph, +(t(p, ph) / t(mv, ph)).toFixed(2)]), ['peak_rss', +((p.peak_rss_mib as number) / (mv.peak_rss_mib as number)).toFixed(2)], ['restore_durable', +(t(p, 'restore_durable' as Phase) / t(mv, 'restore_durable' as Phase)).toFixed(2)]]);
  }
  say('');
  say(`medvault engine bench: ${ds.files} files, ${MB.toFixed(0)} MB, ${rounds} rounds, medians (${new Date().toISOString()})`);
  for (const [name, s] of Object.entries(summary)) say(`  ${name.padEnd(8)} ${[...phases, 'restore_durable'].map((p) => `${p} ${(s[p] as { seconds: number }).seconds.toFixed(1)} s`).join(', ')}; peak RSS ${s.peak_rss_mib} MiB; repo ${s.repo_mb} MB`);
  for (const [peer, r] of Object.entries(ratios)) say(`  medvault vs ${peer} (times better): ${Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return { dataset: { files: ds.files, mb: +MB.toFixed(1), scale }, rounds, results: summary, ratios, skipped, cpus: (await import('node:os')).cpus().length };
}

/**
 * `--only scale` (issue #3 point 7): one million tiny files (`--files N`) and one 20 GiB file
 * (`--gib G`), generated deterministically, each backed up and restored by medvault with wall
 * time and peak RSS; the restore's own read-back verification must pass for every file, and the
 * big file's SHA-256 must match. Its source is removed once backed up (the hash is kept), so the
 * disk never holds more than two copies; everything is removed at the end.
 */
async function scaleSection(): Promise<Record<string, unknown>> {
  const entry = buildAgent(root);
  const cases = [
    { name: 'small_files', files: Number(opt('--files') ?? 1_000_000), make: smallFiles },
    { name: 'big_file', files: 1, make: bigFile },
  ];
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  const out: Record<string, unknown> = {};
  for (const c of cases) {
    const base = join(work, 'scale', c.name);
    rmSync(base, { recursive: true, force: true });
    const data = join(base, 'src');
    mkdirSync(data, { recursive: true });
    const t0 = Date.now();
    const made: { bytes: number; sha256?: string } = c.make(data, c.files);
    say(`bench scale ${c.name}: ${c.files} files, ${(made.bytes / 2 ** 30).toFixed(2)} GiB generated in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const mv = engines(entry, data).list[0]!;
    const repo = join(base, 'repo');
    mv.init(repo);
    const report = (phase: string, m: Measure) => {
      say(`bench scale ${c.name}: ${phase} ${m.seconds.toFixed(1)} s, ${(c.files / m.seconds).toFixed(0)} files/s, ${(made.bytes / 1e6 / m.seconds).toFixed(0)} MB/s, peak RSS ${(m.rssKiB / 1024).toFixed(0)} MiB (load ${load()})`);
      return { seconds: +m.seconds.toFixed(1), files_s: Math.round(c.files / m.seconds), mb_s: +(made.bytes / 1e6 / m.seconds).toFixed(1), peak_rss_mib: Math.round(m.rssKiB / 1024), load: Number(load()) };
    };
    const backup = report('backup', measure(mv.backup(repo, data)));
    const repoBytes = du(repo);
    if (made.sha256) rmSync(data, { recursive: true, force: true });
    const target = join(base, 'restored');
    const r = measure(mv.restore(repo, target).cmd);
    const restored = JSON.parse(r.out.trim().split('\n').pop()!) as { files: number; verified: number; failed: string[] };
    if (restored.files !== c.files || restored.verified !== c.files || restored.failed.length > 0) throw new Error(`bench scale ${c.name}: restored ${restored.files} files, ${restored.verified} verified, ${restored.failed.length} failed; expected ${c.files}`);
    if (made.sha256 && sha256File(join(target, 'volume.raw')) !== made.sha256) throw new Error(`bench scale ${c.name}: the restored file's SHA-256 differs from the original's`);
    const restore = report('restore', r);
    out[c.name] = { files: c.files, gib: +(made.bytes / 2 ** 30).toFixed(2), repo_gib: +(repoBytes / 2 ** 30).toFixed(2), backup, restore, verified: restored.verified };
    rmSync(base, { recursive: true, force: true });
  }
  rmSync(join(work, 'scale'), { recursive: true, force: true });
  return out;
}

/** `n` tiny records (20-380 bytes of text, each different) in folders of 1,000. */
function smallFiles(dir: string, n: number): { bytes: number } {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const d = join(dir, `f${String(Math.floor(i / 1000)).padStart(4, '0')}`);
    if (i % 1000 === 0) mkdirSync(d);
    const note = createHash('sha256').update(String(i)).digest('hex').repeat(6).slice(0, 20 + ((i * 7919) % 360));
    const b = Buffer.from(`{"id":${i},"note":"${note}"}\n`);
    writeFileSync(join(d, `r${i}.json`), b);
    bytes += b.length;
  }
  return { bytes };
}

/** One file of `--gib` GiB (20 by default) of incompressible bytes; returns its SHA-256 too. */
function bigFile(dir: string): { bytes: number; sha256: string } {
  const size = Number(opt('--gib') ?? 20) * 2 ** 30;
  const ks = createCipheriv('aes-256-ctr', createHash('sha256').update('bench big file').digest(), Buffer.alloc(16));
  const h = createHash('sha256');
  const fd = openSync(join(dir, 'volume.raw'), 'w');
  const zero = Buffer.alloc(8 * 2 ** 20);
  for (let done = 0; done < size; done += zero.length) {
    const b = ks.update(zero.subarray(0, Math.min(zero.length, size - done)));
    h.update(b);
    writeSync(fd, b);
  }
  closeSync(fd);
  return { bytes: size, sha256: h.digest('hex') };
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(8 * 2 ** 20);
  for (let n; (n = readSync(fd, b, 0, b.length, null)) > 0; ) h.update(b.subarray(0, n));
  closeSync(fd);
  return h.digest('hex');
}

const out: Record<string, unknown> = {};
if (only === undefined || only === 'engine') out.engine = await engineSection();
if (only === undefined || only === 'rpo') {
  const r = await (await import('./rpo.js')).runRpo({ say });
  say(`medvault rpo bench: ${r.writes} writes over ${r.seconds} s: write → local snapshot p50 ${r.local_p50_s} s, p95 ${r.local_p95_s} s; write → off site p50 ${r.offsite_p50_s} s, p95 ${r.offsite_p95_s} s (${r.snapshots} continuous snapshots, ${r.missing} missing)`);
  out.rpo = r;
}
if (only === 'scale') out.scale = await scaleSection(); // long (an hour or more): only when asked
if (only === undefined || only === 'fleet') out.fleet = await (await import('./fleet.js')).runFleet({ say });
if (only === undefined || only === 'offsite') out.offsite = await (await import('./offsite.js')).runOffsite({ say, mib: 1024 * scale });
if (json) say(JSON.stringify(out));
void randomBytes;
