/**
 * Off-site pruning under the `[offsite.retention]` policy. planPrune is pure (clock injected); the
 * Pruner applies a plan. Per site and repository:
 * 1. A repository is held back whole (nothing in it pruned) while a snapshot's needs are not known:
 *    its needs list is incomplete, or its snapshot object is off site without any needs list (not
 *    sent yet, or aged out of MV_EVENTS after 400 days).
 * 2. The policy (protocol retention.ts) decides over the snapshots with complete lists, by the
 *    controller's stream time of each list (RetentionBook). A snapshot is kept, besides the policy's
 *    reasons, when it is on legal hold (HoldBook, or a hold tag) or younger than `min_age`.
 * 3. An object's copy is deleted only when it is a pack, index or snapshot object; some complete
 *    needs list names it (unknown objects are kept); no kept snapshot needs it; and its receipt is
 *    older than `min_age`. Config and key objects are never deleted.
 * 4. Deleting: first a signed mv.pruned.v1 per repository (≤ 1,000 objects each) on MV_CONTROL, so
 *    neither the scrub nor the agent's reconcile takes the objects for missing, then the purge of
 *    their subjects. A crash in between leaves copies nobody lists (never a listed copy gone).
 * 5. A kept snapshot that needs an object pruned earlier (its data came back) gets it asked for
 *    again with a signed mv.resend.v1.
 * One audit entry per run (dry runs and failed runs too) gives the counts and what was deleted and why.
 */
import { randomUUID } from 'node:crypto';
import { applyPolicy, encode, formatDuration, signMessage, streams, subjects, type ObjectRef, type PrunedRecord, type RetentionPolicy, type SigningKey } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Bus } from '../bus.js';
import { objectKey } from '../ingest/assembler.js';
import type { OffsiteEntry, OffsiteIndex } from '../ingest/offsite-index.js';
import type { Log } from '../log.js';
import type { Hold } from './holds.js';
import { parseKey, type NeedsList, type RetentionBook } from './retention.js';
import type { Scrub } from './scrub.js';

export interface SnapshotVerdict {
  repo: string;
  snapshot: string;
  store: string;
  /** Controller (stream) time of its needs list; the time the agent claims. */
  time: number;
  claimedTime: number;
  keep: boolean;
  /** Why it is kept (empty when the policy drops it). */
  reasons: string[];
}

export interface PrunePlan {
  site: string;
  snapshots: SnapshotVerdict[];
  /** Copies to delete, each with why. */
  delete: Array<OffsiteEntry & { why: string }>;
  /** Receipted copies kept. */
  kept: number;
  /** Objects kept snapshots need that were pruned before (to be asked for again). */
  reneeded: Array<{ repo: string } & ObjectRef & { snapshot: string }>;
}

export interface PlanInput {
  site: string;
  lists: NeedsList[];
  /** The objectKey of every object a snapshot needs (RetentionBook.needKeys). */
  needs: (repo: string, snapshot: string) => string[] | undefined;
  entries: OffsiteEntry[];
  held: ReadonlySet<string>;
  policy: RetentionPolicy;
  minAgeMs: number;
  now: number;
  pruned: (o: { site: string; repo: string } & ObjectRef) => boolean;
}

const prunable = new Set(['pack', 'index', 'snapshot']);
const short = (h: string) => h.slice(0, 12);

export function planPrune(x: PlanInput): PrunePlan {
  const plan: PrunePlan = { site: x.site, snapshots: [], delete: [], kept: 0, reneeded: [] };
  const offsite = new Set(x.entries.map((e) => objectKey(e)));
  const known = new Set<string>();
  const needed = new Set<string>();
  /** Object key → how many dropped snapshots need it, and the first three (for the why). */
  const droppedBy = new Map<string, { n: number; first: string[] }>();
  const blocked = new Set<string>();
  const listed = new Set(x.lists.map((l) => `${l.repo}/${l.snapshot}`));
  const unlisted = x.entries.filter((e) => e.kind === 'snapshot' && !listed.has(`${e.repo}/${e.hash}`));
  for (const repo of [...new Set(x.lists.map((l) => l.repo))].sort()) {
    const lists = x.lists.filter((l) => l.repo === repo);
    const incomplete = lists.find((l) => !l.complete);
    const unknown = unlisted.find((e) => e.repo === repo);
    if (incomplete || unknown) {
      blocked.add(repo);
      const why = `repository ${repo} held back: ${incomplete ? `the needs list of snapshot ${short(incomplete.snapshot)} is incomplete` : `snapshot ${short(unknown!.hash)} is off site without a needs list`}`;
      for (const l of lists) plan.snapshots.push({ repo, snapshot: l.snapshot, store: l.store, time: l.time, claimedTime: l.claimedTime, keep: true, reasons: [why] });
      continue;
    }
    const byHash = new Map(lists.map((l) => [l.snapshot, l]));
    for (const d of applyPolicy(lists.map((l) => ({ hash: l.snapshot, time: l.time, store: l.store, tags: l.tags })), x.policy)) {
      const l = byHash.get(d.hash)!;
      const reasons = [...d.reasons];
      if (x.held.has(d.hash)) reasons.unshift('legal hold');
      if (x.now - l.time < x.minAgeMs) reasons.push(`younger than min_age ${formatDuration(x.minAgeMs)}`);
      const keep = reasons.length > 0;
      plan.snapshots.push({ repo, snapshot: d.hash, store: l.store, time: l.time, claimedTime: l.claimedTime, keep, reasons });
      for (const k of x.needs(repo, d.hash) ?? []) {
        known.add(k);
        if (keep) {
          if (!needed.has(k) && !offsite.has(k) && x.pruned({ site: x.site, repo, ...parseKey(k) })) plan.reneeded.push({ repo, ...parseKey(k), snapshot: d.hash });
          needed.add(k);
        } else {
          const by = droppedBy.get(k) ?? { n: 0, first: [] };
          if (by.n++ < 3) by.first.push(d.hash);
          droppedBy.set(k, by);
        }
      }
    }
  }
  for (const e of x.entries) {
    const k = objectKey(e);
    if (blocked.has(e.repo) || !prunable.has(e.kind) || needed.has(k) || !known.has(k) || x.now - e.storedAt < x.minAgeMs) {
      plan.kept++;
      continue;
    }
    const by = droppedBy.get(k)!;
    plan.delete.push({ ...e, why: `needed only by snapshot${by.n === 1 ? '' : 's'} ${by.first.map(short).join(', ')}${by.n > 3 ? ` and ${by.n - 3} more` : ''}, which the policy drops` });
  }
  return plan;
}

export interface PruneReport {
  dryRun: boolean;
  startedAt: number;
  plans: PrunePlan[];
  deleted: number;
  bytes: number;
  /** Ids of the mv.pruned.v1 records published. */
  records: string[];
}

export interface PrunerDeps {
  bus: Pick<Bus, 'publish' | 'purgeSubject'>;
  index: OffsiteIndex;
  retention: RetentionBook;
  holds: () => Promise<Hold[]>;
  scrub: Pick<Scrub, 'resend'>;
  policy: RetentionPolicy;
  minAgeMs: number;
  key: SigningKey;
  clock: () => number;
  log: Log;
  audit: AuditSink;
}

export class Pruner {
  constructor(private readonly d: PrunerDeps) {}

  /** Plans every site (or `sites`) and, unless `dryRun`, deletes what the plans say; audited once. */
  async run(o: { sites?: string[]; dryRun?: boolean; actor?: { kind: 'user' | 'controller' | 'scheduler'; id: string } } = {}): Promise<PruneReport> {
    const { index, retention, log } = this.d;
    const now = this.d.clock();
    const sites = o.sites ?? [...new Set([...index.sites(), ...retention.sites()])].sort();
    const holds = await this.d.holds();
    const report: PruneReport = { dryRun: o.dryRun ?? false, startedAt: now, plans: [], deleted: 0, bytes: 0, records: [] };
    let failure: Error | undefined;
    try {
      for (const site of sites) {
        const plan = planPrune({
          site, lists: retention.snapshots(site), needs: (repo, s) => retention.needKeys(site, repo, s), entries: index.entries(site),
          held: new Set(holds.filter((h) => h.site === site && h.active).map((h) => h.snapshot)),
          policy: this.d.policy, minAgeMs: this.d.minAgeMs, now, pruned: (x) => retention.pruned(x) !== undefined && index.damage(x) === undefined,
        });
        report.plans.push(plan);
        if (report.dryRun) continue;
        await this.apply(site, plan, report);
        if (plan.reneeded.length > 0) {
          log.warn({ site, objects: plan.reneeded.length }, 'kept snapshots need objects pruned earlier: asking the site to send them again');
          await this.d.scrub.resend(site, plan.reneeded.map((r) => ({ site, repo: r.repo, kind: r.kind, hash: r.hash, size: 0, storedAt: now, problem: `pruned off site earlier; needed again by snapshot ${short(r.snapshot)}` })));
        }
      }
    } catch (err) {
      failure = err as Error;
      throw err;
    } finally {
      await this.audit(report, o.actor ?? { kind: 'controller', id: 'controller' }, o.sites, failure);
    }
    return report;
  }

  private async apply(site: string, plan: PrunePlan, report: PruneReport): Promise<void> {
    for (const repo of [...new Set(plan.delete.map((e) => e.repo))]) {
      const mine = plan.delete.filter((e) => e.repo === repo);
      for (let i = 0; i < mine.length; i += 1000) {
        const chunk = mine.slice(i, i + 1000);
        const reason = `off-site retention: ${chunk.map((e) => `${e.kind} ${short(e.hash)} ${e.why}`).join('; ')}`.slice(0, 2000);
        const r = signMessage<PrunedRecord>({ type: 'mv.pruned.v1', id: randomUUID(), site, repo, objects: chunk.map((e) => ({ kind: e.kind, hash: e.hash })), reason, at: this.d.clock() }, this.d.key);
        await this.d.bus.publish(subjects.control(site, 'pruned'), encode(r), { msgId: `${site}.pruned.${r.id}` });
        report.records.push(r.id);
        // The projection applies the record too; here at once, so no scrub in this process reads a purged copy.
        for (const e of chunk) this.d.index.remove(e);
        this.d.retention.applyPruned(r);
        for (const e of chunk) {
          await this.d.bus.purgeSubject(streams.offsite.name, subjects.offsite(site, repo, e.kind, e.hash));
          report.deleted++;
          report.bytes += e.size;
        }
        this.d.log.info({ site, repo, objects: chunk.length, record: r.id }, 'off-site copies pruned');
      }
    }
  }

  private async audit(r: PruneReport, actor: { kind: 'user' | 'controller' | 'scheduler'; id: string }, sites?: string[], failure?: Error): Promise<void> {
    const snaps = r.plans.flatMap((p) => p.snapshots);
    const deletes = r.plans.flatMap((p) => p.delete.map((e) => `${p.site} ${e.kind} ${e.hash}: ${e.why}`));
    await this.d.audit.record({
      actor, action: 'offsite.prune', object: sites ? sites.join(',').slice(0, 1000) : 'all sites', result: failure ? 'failed' : 'ok',
      detail: {
        dryRun: r.dryRun, sites: r.plans.length, snapshotsKept: snaps.filter((s) => s.keep).length, snapshotsDropped: snaps.filter((s) => !s.keep).length,
        held: snaps.filter((s) => s.reasons.includes('legal hold')).length, planned: deletes.length, deleted: r.deleted, bytes: r.bytes,
        reneeded: r.plans.reduce((n, p) => n + p.reneeded.length, 0), records: r.records.join(',').slice(0, 2000) || null,
        objects: deletes.join('; ').slice(0, 2000) || null, error: failure ? failure.message.slice(0, 2000) : null,
      },
    });
  }
}

/** The dry-run text: per snapshot why it is kept or that it goes, then the copies that would go. */
export function formatPlan(p: PrunePlan): string[] {
  const lines = [`site ${p.site}: ${p.snapshots.filter((s) => s.keep).length} snapshots kept, ${p.snapshots.filter((s) => !s.keep).length} dropped; ${p.delete.length} copies to delete (${p.delete.reduce((n, e) => n + e.size, 0)} bytes), ${p.kept} kept`];
  for (const s of [...p.snapshots].sort((a, b) => b.time - a.time)) {
    lines.push(`  snapshot ${short(s.snapshot)} ${s.store} ${new Date(s.time).toISOString()}: ${s.keep ? `kept: ${s.reasons.join('; ')}` : 'dropped: no rule keeps it'}`);
  }
  for (const e of p.delete) lines.push(`  delete ${e.repo} ${e.kind} ${e.hash} (${e.size} bytes): ${e.why}`);
  for (const r of p.reneeded) lines.push(`  resend ${r.repo} ${r.kind} ${r.hash}: pruned earlier, needed again by snapshot ${short(r.snapshot)}`);
  return lines;
}
