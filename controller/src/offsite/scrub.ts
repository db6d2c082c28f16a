/**
 * The scrub: walks every receipted off-site copy at a bounded rate, reads it back and checks every
 * part and its SHA-256 (checkCopy). A copy that is missing or damaged is
 *  1. purged (what is left of it can never be trusted again),
 *  2. flagged in the OffsiteIndex (its alert, naming site, repo, kind and hash, stays open until a
 *     fresh receipt for the object arrives), and
 *  3. asked for again: a signed mv.resend.v1 to the site (one per repository, at most 1,000 objects
 *     each), which the projection also reads back, so the flags survive a restart;
 * then the site gets an mv.reconcile.v1 (compare everything, not only what the scrub read). Sites
 * are also sent a reconcile request at start and daily (`reconcileAll`).
 */
import { randomUUID } from 'node:crypto';
import { encode, formatCount, signMessage, streams, subjects, type ObjectRef, type ReconcileRequest, type ResendRequest, type SigningKey } from '@medvault/protocol';
import type { Bus } from '../bus.js';
import type { Log } from '../log.js';
import type { OffsiteEntry, OffsiteIndex } from '../ingest/offsite-index.js';
import type { Finding } from '../health/assess.js';
import { checkCopy } from './copy.js';

export const OFFSITE_DAMAGED = 'MV_ALERT_OFFSITE_DAMAGED';

export interface ScrubDeps {
  bus: Pick<Bus, 'scanSubject' | 'purgeSubject' | 'publish'>;
  index: OffsiteIndex;
  key: SigningKey;
  clock: () => number;
  log: Log;
  /** Bytes read per second at most (0: unlimited). */
  rate: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ScrubReport {
  objects: number;
  bytes: number;
  damaged: Array<OffsiteEntry & { problem: string }>;
  startedAt: number;
  endedAt: number;
}

export class Scrub {
  private stopped = false;
  constructor(private readonly d: ScrubDeps) {}

  /** Ends a running pass after the object being read. */
  stop(): void {
    this.stopped = true;
  }

  /** One pass over the copies of `sites` (default every site), oldest receipt first. */
  async pass(sites: string[] = this.d.index.sites()): Promise<ScrubReport> {
    const { index, log } = this.d;
    const startedAt = this.d.clock();
    const report: ScrubReport = { objects: 0, bytes: 0, damaged: [], startedAt, endedAt: startedAt };
    const begun = Date.now();
    let read = 0;
    const sleep = this.d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const pace = async (bytes: number) => {
      read += bytes;
      if (this.d.rate <= 0) return;
      const due = (read / this.d.rate) * 1000 - (Date.now() - begun);
      if (due > 5) await sleep(due);
    };
    for (const site of sites) {
      const bad: Array<OffsiteEntry & { problem: string }> = [];
      for (const e of index.entries(site)) {
        if (this.stopped) break;
        if (index.damage(e)) continue; // already asked for again
        const subject = subjects.offsite(e.site, e.repo, e.kind, e.hash);
        const problem = await checkCopy(this.d.bus, subject, e, pace);
        report.objects++;
        report.bytes += e.size;
        if (problem === undefined) continue;
        if (!index.get(e)) continue; // pruned meanwhile (by another controller or the CLI): not damage
        log.error({ site, repo: e.repo, kind: e.kind, hash: e.hash, problem }, 'off-site copy damaged: purged, asking the site to send it again');
        await this.d.bus.purgeSubject(streams.offsite.name, subject);
        bad.push({ ...e, problem });
      }
      if (bad.length > 0) {
        await this.resend(site, bad);
        await this.reconcile(site, `the scrub found ${formatCount(bad.length, 'damaged off-site copy', 'damaged off-site copies')}`);
      }
      report.damaged.push(...bad);
    }
    report.endedAt = this.d.clock();
    return report;
  }

  /** Asks `site` to send `objects` again (signed, per repository) and flags them in the index. */
  async resend(site: string, objects: Array<OffsiteEntry & { problem: string }>): Promise<void> {
    for (const repo of [...new Set(objects.map((o) => o.repo))]) {
      const mine = objects.filter((o) => o.repo === repo);
      for (let i = 0; i < mine.length; i += 1000) {
        const chunk = mine.slice(i, i + 1000);
        const refs: ObjectRef[] = chunk.map((o) => ({ kind: o.kind, hash: o.hash }));
        const reason = `off-site copy missing or damaged: ${chunk.map((o) => `${o.kind} ${o.hash.slice(0, 12)}: ${o.problem}`).join('; ')}`.slice(0, 2000);
        const r = signMessage<ResendRequest>({ type: 'mv.resend.v1', id: randomUUID(), site, repo, objects: refs, reason, at: this.d.clock() }, this.d.key);
        await this.d.bus.publish(subjects.control(site, 'resend'), encode(r), { msgId: `${site}.resend.${r.id}` });
        for (const o of chunk) this.d.index.markDamaged({ site, repo, kind: o.kind, hash: o.hash, problem: o.problem, at: r.at, request: r.id });
      }
    }
  }

  /** Asks `site` to compare its repository with MV_OFFSITE and send whatever is missing there. */
  async reconcile(site: string, reason: string): Promise<void> {
    const r = signMessage<ReconcileRequest>({ type: 'mv.reconcile.v1', id: randomUUID(), site, reason, at: this.d.clock() }, this.d.key);
    await this.d.bus.publish(subjects.control(site, 'reconcile'), encode(r), { msgId: `${site}.reconcile.${r.id}` });
  }
}

/** The open-alert findings of a site's damaged copies (one per object, until its next receipt). */
export function damageFindings(index: Pick<OffsiteIndex, 'damages'>, site: string): Finding[] {
  return index.damages(site).map((d) => ({
    key: `offsite:${d.repo}/${d.kind}/${d.hash}`,
    code: OFFSITE_DAMAGED,
    severity: 'critical',
    source: 'controller',
    message: `off-site copy of ${d.kind} ${d.hash} (repository ${d.repo}) of site ${d.site} is missing or damaged (${d.problem}); the site was asked to send it again`.slice(0, 2000),
  }));
}
