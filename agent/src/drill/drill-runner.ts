/**
 * drill/: disaster-recovery drills (SOP 5.4). A drill restores a snapshot of one store into scratch
 * space, once per source asked for (the local disk, the off-site copy), verifies every file, measures
 * RTO and RPO against the store's targets, reports mv.drill-result.v1, a backup-log entry (job
 * 'drill') and an audit entry, and always cleans up. It never touches the record store.
 *
 * 1. Resolve the store, the snapshot ('latest' of the store or the given hash) and the newest
 *    snapshot of the store (RPO = drill start − its time), on the first source that opens.
 * 2. Choose the files: all of them (sample 1), or a sample seeded by the drill id (same id, same
 *    files on every source), at least one file.
 * 3. Per source: restore into `<drill_dir>/<id>-<source>` with the Restorer (which reads every file
 *    back and compares it with the snapshot); a database store instead loads its dump into the
 *    scratch database `medvault_drill_<short id>_<source>`, counts its tables and rows, drops it.
 *    RTO of the run = seconds from its start to the last verified byte (or the check of the database).
 * 4. The scratch folder and database are removed whatever happened (also on failure). A database
 *    run makes its scratch folder first, holding the store's name, and removes it only after the
 *    database is dropped: a folder left by a crash names the database to drop (cleanLeftovers).
 * 5. Passed only when every run passed and both targets were met.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MedvaultError, codes, formatCount, validate, type BackupLog, type DrillResult, type DrillRun, type DrillSource,
} from '@medvault/protocol';
import { DEFAULT_RTO_S, type DatabaseStoreConfig, type StoreConfig } from '../config.js';
import { nextOccurrence } from '../schedule/cron.js';
import { rpoTargetS } from '../schedule/planner.js';
import type { Repository } from '../repo/repository.js';
import { nameBytes, type TreeNode } from '../repo/tree.js';
import { Restorer } from '../restore/restorer.js';
import { snapshotFileStream } from '../backup/stream-archiver.js';
import { countRows, dropDatabase, dumpName, restoreDatabase } from '../sources/database.js';
import type { AuditSink } from '../audit/audit-log.js';

/** What a drill is asked to do: a verified drill order, or the same from the CLI. */
export interface DrillPlan {
  id: string;
  store: string;
  snapshot: 'latest' | string;
  sample: number;
  sources: DrillSource[];
  requestedBy: DrillResult['requestedBy'];
}

/** A repository opened for one source; `close` releases it. */
export interface DrillSourceRepo {
  repo: Repository;
  label: string;
  close(): Promise<void>;
}

export interface DrillRunnerDeps {
  site: string;
  stores: StoreConfig[];
  /** Scratch space: one fresh folder per run under it. */
  drillDir: string;
  /** Opens the repository of `source`; throws (or resolves undefined) when that source is not available. */
  open(source: DrillSource): Promise<DrillSourceRepo | undefined>;
  /** Publishes the result (spool event 'drill') and, for a drill that ran, its backup-log entry (spool event 'log'). */
  publish(result: DrillResult, log?: BackupLog): void;
  audit?: AuditSink;
  now: () => number;
}

const MAX_FAILED = 1000;

/** A deterministic sample of `share` of `items` (at least one), seeded by `seed`; all of them for share 1. */
export function sampleOf<T>(items: T[], share: number, seed: string): T[] {
  if (share >= 1 || items.length === 0) return items;
  const n = Math.max(1, Math.round(items.length * share));
  const rank = (i: number) => createHash('sha256').update(`${seed}\0${i}`).digest().readUInt32BE(0);
  return items.map((item, i) => ({ item, r: rank(i), i })).sort((a, b) => a.r - b.r || a.i - b.i).slice(0, n).sort((a, b) => a.i - b.i).map((x) => x.item);
}

export class DrillRunner {
  constructor(private readonly d: DrillRunnerDeps) {}

  /**
   * Scratch space left by a drill cut short (crash, power loss), removed at agent start and before
   * the next drill: each leftover folder, and first the scratch database it names. A database that
   * cannot be dropped now (server down) keeps its folder, so a later clean-up tries again.
   * Resolves with the folders removed.
   */
  async cleanLeftovers(): Promise<string[]> {
    const names = await readdir(this.d.drillDir).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const n of names) {
      const m = /^([0-9a-f-]{36})-(local|offsite)$/.exec(n);
      if (!m) continue;
      const dir = join(this.d.drillDir, n);
      const name = (await readFile(join(dir, DB_MARKER), 'utf8').catch(() => undefined))?.trim();
      const store = this.d.stores.find((s): s is DatabaseStoreConfig => s.type !== 'files' && s.name === name);
      if (store && !(await dropDatabase(store, scratchDatabase(m[1]!, m[2]!)).then(() => true, () => false))) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(n);
    }
    return removed;
  }

  /**
   * The result of a drill order that did not run to the end: refused after its signature checked
   * out (expired, not yet valid, replayed), or cut short by the agent stopping. A failed drill with
   * the reason, so the controller does not wait for it; `report` publishes it.
   */
  notRun(plan: DrillPlan, error: { code: string; message: string }, startedAt = this.d.now()): DrillResult {
    return validate({
      type: 'mv.drill-result.v1', drillId: plan.id, site: this.d.site, store: plan.store, requestedBy: plan.requestedBy, sample: plan.sample,
      startedAt, endedAt: Math.max(startedAt, this.d.now()), result: 'failed', targets: this.targetsOf(plan.store), met: { rto: false, rpo: false }, runs: [],
      error: { code: error.code.slice(0, 64), message: error.message.slice(0, 2000) },
    }, 'mv.drill-result.v1');
  }

  /** Publishes a result made elsewhere (notRun, or one recorded in the ledger and not yet reported). */
  report(result: DrillResult): void {
    this.d.publish(result);
  }

  private targetsOf(name: string): DrillResult['targets'] {
    const store = this.d.stores.find((s) => s.name === name);
    return { rtoS: store ? store.rto_s ?? DEFAULT_RTO_S : 0, rpoS: store ? rpoTargetS(store, nextOccurrence) : 0 };
  }

  /** Runs the drill to the end and publishes its result; never throws for a failed drill. */
  async run(plan: DrillPlan): Promise<DrillResult> {
    const startedAt = this.d.now();
    const store = this.d.stores.find((s) => s.name === plan.store);
    const runs: DrillRun[] = [];
    let found: { repo: string; snapshot: string; snapshotTime: number; rpoS: number; files: number; bytes: number } | undefined;
    let error: DrillResult['error'];
    let paths: string[] | undefined;
    if (!store) error = { code: codes.CONFIG_INVALID, message: `drill ${plan.id}: this agent has no store named ${plan.store}` };
    else {
      await this.cleanLeftovers();
      for (const source of plan.sources) {
        const run = await this.runSource(plan, store, source, async (src) => {
          if (!found) {
            const info = await src.repo.resolveSnapshot(plan.snapshot, store.name);
            const newest = await src.repo.resolveSnapshot('latest', store.name);
            found = { repo: src.repo.id, snapshot: info.hash, snapshotTime: info.time, rpoS: Math.max(0, (startedAt - newest.time) / 1000), files: info.summary.files, bytes: info.summary.bytes };
          }
          if (store.type === 'files') paths ??= await this.choose(src, found.snapshot, plan);
          return { snapshot: found.snapshot, paths: paths ?? [] };
        });
        runs.push(run);
      }
    }
    const targets = this.targetsOf(plan.store);
    const met = {
      rto: runs.length > 0 && runs.every((r) => r.result === 'passed' && r.rtoS <= targets.rtoS),
      rpo: found !== undefined && found.rpoS <= targets.rpoS,
    };
    if (!error && runs.every((r) => r.error) && runs[0]?.error) error = runs[0].error;
    const passed = !error && runs.length > 0 && runs.every((r) => r.result === 'passed') && met.rto && met.rpo;
    const result: DrillResult = validate({
      type: 'mv.drill-result.v1', drillId: plan.id, site: this.d.site, store: plan.store,
      ...(found ? { repo: found.repo, snapshot: found.snapshot, snapshotTime: found.snapshotTime, rpoS: round(found.rpoS) } : {}),
      requestedBy: plan.requestedBy, sample: plan.sample, startedAt, endedAt: this.d.now(),
      result: passed ? 'passed' : 'failed', targets, met, runs, ...(error ? { error } : {}),
    }, 'mv.drill-result.v1');
    this.d.publish(result, this.logEntry(result));
    this.d.audit?.record({
      actor: plan.requestedBy, action: 'drill', object: `drill:${plan.id}`,
      result: passed ? 'ok' : 'failed',
      detail: {
        store: plan.store, snapshot: result.snapshot ?? null, sample: plan.sample, sources: plan.sources.join(','),
        rtoS: Math.max(0, ...runs.map((r) => r.rtoS)), rpoS: result.rpoS ?? null, failed: runs.reduce((n, r) => n + r.failed.length, 0),
        error: error?.message.slice(0, 500) ?? null, key: 'repository master key (local)',
      },
    });
    return result;
  }

  /** The snapshot's files (paths as stored, UTF-8 names only when sampling), then the sample. */
  private async choose(src: DrillSourceRepo, snapshot: string, plan: DrillPlan): Promise<string[]> {
    if (plan.sample >= 1) return [];
    const files: string[] = [];
    const walk = async (tree: string, prefix: string): Promise<void> => {
      for (const n of await src.repo.loadTree(tree)) {
        // a path is chosen by its string form, so only names that are that string byte for byte
        // (UTF-8 without control characters: display escapes those)
        if (!nameBytes(n).equals(Buffer.from(n.display))) continue;
        const p = prefix ? `${prefix}/${n.display}` : n.display;
        if (n.type === 'dir' && n.subtree) await walk(n.subtree, p);
        else if (isFile(n)) files.push(p);
      }
    };
    await walk((await src.repo.loadSnapshot(snapshot)).tree, '');
    if (files.length === 0) throw new MedvaultError(codes.NOT_FOUND, `snapshot ${snapshot}: no file to sample`);
    return sampleOf(files, plan.sample, plan.id);
  }

  /** One restore from one source, timed, verified and cleaned up; failures become the run's result. */
  private async runSource(
    plan: DrillPlan, store: StoreConfig, source: DrillSource,
    prepare: (src: DrillSourceRepo) => Promise<{ snapshot: string; paths: string[] }>,
  ): Promise<DrillRun> {
    const startedAt = this.d.now();
    const scratch = join(this.d.drillDir, `${plan.id}-${source}`);
    const dbName = scratchDatabase(plan.id, source);
    let src: DrillSourceRepo | undefined;
    let run: Omit<DrillRun, 'source' | 'startedAt' | 'endedAt' | 'rtoS'> = { result: 'failed', files: 0, bytes: 0, verified: 0, failed: [] };
    let loaded = false;
    try {
      src = await this.d.open(source);
      if (!src) throw new MedvaultError(codes.NOT_FOUND, `the ${source} copy is not available on this agent`);
      const { snapshot, paths } = await prepare(src);
      if (store.type === 'files') {
        await mkdir(scratch, { recursive: true, mode: 0o700 });
        const r = await new Restorer(src.repo).restore({ snapshot, paths, target: scratch, mode: 'new' });
        const reasons = new Map(r.errors.filter((e) => e.code !== 'SKIPPED').map((e) => [e.path, `${e.code}: ${e.message}`]));
        const failed = r.failed.map((path) => ({ path: path.slice(0, 8192), reason: (reasons.get(path) ?? 'restored file did not verify').slice(0, 2000) }));
        const ok = failed.length === 0 && r.verified === r.files && r.files > 0;
        run = {
          result: ok ? 'passed' : 'failed', files: r.files, bytes: r.bytes, verified: r.verified, failed: failed.slice(0, MAX_FAILED),
          ...(ok ? {} : { error: { code: r.errors[0]?.code.slice(0, 64) ?? codes.VERIFY_FAILED, message: summary(source, r.files, r.verified, failed) } }),
        };
      } else {
        const db = store as DatabaseStoreConfig;
        let bytes = 0;
        const dump = snapshotFileStream(src.repo, snapshot, dumpName(db));
        // Only a database this run created is ever dropped: one that existed before is refused, left alone.
        await restoreDatabase(db, dbName, (async function* () {
          for await (const b of dump) {
            bytes += b.length;
            yield b;
          }
        })(), async () => {
          loaded = true;
          await mkdir(scratch, { recursive: true, mode: 0o700 });
          await writeFile(join(scratch, DB_MARKER), `${db.name}\n`, { mode: 0o600 });
        });
        const tables = await countRows(db, dbName);
        const rows = tables.reduce((n, t) => n + t.rows, 0);
        const ok = tables.length > 0;
        run = {
          result: ok ? 'passed' : 'failed', files: 1, bytes, verified: ok ? 1 : 0,
          failed: ok ? [] : [{ path: dumpName(db), reason: `database ${dbName}: the restored dump holds no table` }],
          database: { name: dbName, tables: tables.length, rows },
          ...(ok ? {} : { error: { code: codes.VERIFY_FAILED, message: `drill ${plan.id} (${source}): the dump of store ${store.name} loaded into ${dbName} holds no table` } }),
        };
      }
    } catch (err) {
      const code = err instanceof MedvaultError ? err.code : codes.STORAGE_FAILED;
      run = { ...run, result: 'failed', error: { code, message: `drill ${plan.id} (${source}, ${src?.label ?? 'not opened'}): ${(err as Error).message}`.slice(0, 2000) } };
      if (store.type !== 'files' && loaded) run.failed = [{ path: dumpName(store), reason: (err as Error).message.slice(0, 2000) }];
    }
    const endedAt = this.d.now();
    // Clean-up is not part of the RTO, and always happens; the folder goes last (it names the database).
    const dropped = store.type === 'files' || !loaded || (await dropDatabase(store, dbName).then(() => true, () => false));
    if (dropped) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    await src?.close().catch(() => undefined);
    return { source, startedAt, endedAt, rtoS: round((endedAt - startedAt) / 1000), ...run };
  }

  private logEntry(r: DrillResult): BackupLog {
    const worst = r.runs.find((x) => x.result === 'failed');
    const problems: BackupLog['errors'] = [
      ...(r.error ? [r.error] : []),
      ...r.runs.flatMap((x) => x.error && x.error !== r.error ? [x.error] : []),
      ...r.runs.flatMap((x) => x.failed.map((f) => ({ code: codes.VERIFY_FAILED, message: `${x.source}: ${f.reason}`.slice(0, 2000), path: f.path }))),
      ...(!r.met.rto && !worst ? [{ code: 'MV_DRILL_RTO_MISSED', message: `RTO target ${r.targets.rtoS} s missed: ${r.runs.map((x) => `${x.source} ${x.rtoS} s`).join(', ')}` }] : []),
      ...(!r.met.rpo && r.rpoS !== undefined ? [{ code: 'MV_DRILL_RPO_MISSED', message: `RPO target ${r.targets.rpoS} s missed: the newest snapshot was ${r.rpoS} s old` }] : []),
    ];
    const best = r.runs.find((x) => x.result === 'passed') ?? r.runs[0];
    return {
      type: 'mv.backup-log.v1', site: r.site, jobId: randomUUID(), job: 'drill', store: r.store, ...(r.repo ? { repo: r.repo } : {}),
      actor: r.requestedBy, startedAt: r.startedAt, endedAt: r.endedAt, result: r.result === 'passed' ? 'ok' : 'failed',
      files: best?.files ?? 0, bytes: best?.bytes ?? 0, ...(r.snapshot ? { snapshot: r.snapshot } : {}), orderId: r.drillId,
      errors: problems.slice(0, 1000),
    };
  }
}

const isFile = (n: TreeNode) => n.type === 'file';
/** In a database run's scratch folder: the store's name, so a leftover folder names its database. */
const DB_MARKER = 'database-store';
const scratchDatabase = (id: string, source: string) => `medvault_drill_${id.slice(0, 8)}_${source}`;
const round = (s: number) => Math.round(s * 1000) / 1000;

function summary(source: DrillSource, files: number, verified: number, failed: { path: string; reason: string }[]): string {
  const shown = failed.slice(0, 3).map((f) => `${f.path}: ${f.reason}`).join('; ');
  return `${source}: ${formatCount(failed.length, 'file')} not restored or not verified (${verified} of ${files} restored files verified)${shown ? `: ${shown}` : files === 0 ? ': nothing was restored' : ''}`.slice(0, 2000);
}

/** Publishing through the event spool: the result as event 'drill' (message id by drill), the log entry as 'log'. */
export function spoolPublisher(spool: { add(event: 'drill' | 'log', message: DrillResult | BackupLog, id?: string): void }): DrillRunnerDeps['publish'] {
  return (result, log) => {
    spool.add('drill', result, `drill.${result.drillId}`);
    if (log) spool.add('log', log);
  };
}
