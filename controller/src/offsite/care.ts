/**
 * Puts the off-site copy's care together for app.ts: a reconcile request to every site at start
 * and every `reconcile_interval`, a scrub pass every `scrub_interval` (at most `scrub_rate` bytes/s),
 * off-site pruning every `prune_interval` (prune.ts). Scrub and prune passes never overlap (a scrub
 * must not read a copy a prune is purging); a failed pass is logged and the next one runs on time.
 */
import type { SigningKey } from '@medvault/protocol';
import type { AuditSink } from '../audit/trail.js';
import type { Bus } from '../bus.js';
import type { FleetRegistry } from '../fleet/registry.js';
import type { OffsiteIndex } from '../ingest/offsite-index.js';
import type { Log } from '../log.js';
import { offsiteConfigSchema, offsitePolicy, type OffsiteConfig } from './config.js';
import type { Hold } from './holds.js';
import { Pruner, type PruneReport } from './prune.js';
import type { RetentionBook } from './retention.js';
import { Scrub, type ScrubReport } from './scrub.js';

export interface OffsiteCareDeps {
  bus: Pick<Bus, 'scanSubject' | 'purgeSubject' | 'publish'>;
  index: OffsiteIndex;
  fleet: Pick<FleetRegistry, 'sites'>;
  key: SigningKey;
  clock: () => number;
  log: Log;
  audit: AuditSink;
  config?: OffsiteConfig;
  /** Off-site retention: needs lists and legal holds (no pruning without them). */
  retention?: RetentionBook;
  holds?: () => Promise<Hold[]>;
}

export interface OffsiteCare {
  readonly scrub: Scrub;
  /** Runs one scrub pass now (waits for a running one first). */
  scrubNow(sites?: string[]): Promise<ScrubReport>;
  /** Runs one prune pass now (after a running scrub or prune); undefined without retention. */
  pruneNow(o?: Parameters<Pruner['run']>[0]): Promise<PruneReport | undefined>;
  stop(): void;
}

export async function startOffsiteCare(d: OffsiteCareDeps): Promise<OffsiteCare> {
  const c = d.config ?? offsiteConfigSchema.parse(undefined);
  const scrub = new Scrub({ bus: d.bus, index: d.index, key: d.key, clock: d.clock, log: d.log, rate: c.scrub_rate });
  const sites = () => [...new Set([...d.fleet.sites().map((s) => s.site), ...d.index.sites()])].sort();
  const timers: NodeJS.Timeout[] = [];
  let running: Promise<unknown> | undefined;
  const scrubNow = async (only?: string[]): Promise<ScrubReport> => {
    while (running) await running.catch(() => undefined);
    const pass = scrub.pass(only);
    running = pass;
    try {
      const r = await pass;
      await d.audit.record({
        actor: { kind: 'controller', id: 'controller' }, action: 'offsite.scrub', object: only ? only.join(',') : 'all sites', result: r.damaged.length ? 'failed' : 'ok',
        detail: { objects: r.objects, bytes: r.bytes, damaged: r.damaged.length, first: r.damaged[0] ? `${r.damaged[0].site} ${r.damaged[0].kind} ${r.damaged[0].hash}: ${r.damaged[0].problem}`.slice(0, 2000) : null },
      });
      return r;
    } finally {
      running = undefined;
    }
  };
  const { policy, minAgeMs } = offsitePolicy(c.retention);
  const pruner = d.retention && d.holds
    ? new Pruner({ bus: d.bus, index: d.index, retention: d.retention, holds: d.holds, scrub, policy, minAgeMs, key: d.key, clock: d.clock, log: d.log, audit: d.audit })
    : undefined;
  const pruneNow = async (o?: Parameters<Pruner['run']>[0]): Promise<PruneReport | undefined> => {
    if (!pruner) return undefined;
    while (running) await running.catch(() => undefined);
    const pass = pruner.run(o);
    running = pass;
    try {
      return await pass;
    } finally {
      running = undefined;
    }
  };
  const reconcileAll = async (reason: string) => {
    for (const site of sites()) await scrub.reconcile(site, reason).catch((err: Error) => d.log.warn({ site, err }, 'reconcile request not sent'));
  };
  const every = (seconds: number, what: string, fn: () => Promise<unknown>) => {
    if (seconds <= 0) return;
    const t = setInterval(() => void fn().catch((err: Error) => d.log.error({ err }, `${what} failed; next one on schedule`)), seconds * 1000);
    t.unref();
    timers.push(t);
  };
  await reconcileAll('controller start');
  every(c.reconcile_interval, 'reconcile', () => reconcileAll('daily reconcile'));
  every(c.scrub_interval, 'scrub', () => (running ? Promise.resolve() : scrubNow()));
  every(c.prune_interval, 'off-site prune', () => (running ? Promise.resolve() : pruneNow({ actor: { kind: 'scheduler', id: 'offsite-prune' } })));
  return {
    scrub,
    scrubNow,
    pruneNow,
    stop() {
      scrub.stop();
      timers.forEach(clearInterval);
    },
  };
}
