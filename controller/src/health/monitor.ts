/**
 * The HealthMonitor applies `assessSite` to the live fleet: at once when a site's events arrive
 * (so a change reaches the dashboard within milliseconds), and every `everyMs` for all sites (so
 * time alone — silence, age — changes a state). Each assessment reconciles the site's alerts and,
 * when what the dashboard shows changed, tells the listeners. It also samples each site's RPO age
 * and off-site lag into a bounded ring (the dashboard's "RPO over time").
 *
 * When the whole fleet (two sites or more) falls silent at once, the fault is on the controller's
 * side of the network far more likely than at every clinic: instead of one offline alert per site
 * it raises one `MV_ALERT_NO_EVENTS` (pseudo-site `_controller`) and gives every agent a fresh
 * heartbeat interval once events flow again.
 */
import type { FleetRegistry } from '../fleet/registry.js';
import { orderView, type OrderBook } from '../orders/order-book.js';
import type { AlertBook } from '../alerts/alert-book.js';
import { alertCodes, assessSite, defaultPolicy, verificationsOf, type Finding, type HealthPolicy, type HealthState, type SiteFacts, type SiteHealth, type Verification } from './assess.js';

/** What the fleet overview shows of a site. */
export interface SiteSummary {
  site: string;
  state: HealthState;
  reasons: number;
  /** The worst reason's message. */
  headline?: string;
  lastHeartbeatAt?: number;
  agentVersion?: string;
  lastBackupAt?: number;
  rpoAgeS?: number;
  rpoTargetS?: number;
  offsiteLagS?: number;
  /** `catching up: X GB left, about N h` (assess.ts catchUpText). */
  catchUp?: string;
  diskState: SiteHealth['diskState'];
  /** Smallest free share over the site's disks, 0-1. */
  diskFree?: number;
  openAlerts: number;
  stores: number;
  lastVerifiedAt?: number;
}

export interface MonitorDeps {
  fleet: FleetRegistry;
  book: OrderBook;
  alerts: AlertBook;
  clock: () => number;
  policy?: HealthPolicy;
  everyMs?: number;
  /** Drills and other verifications per site (hook for the drills feature). */
  drills?: (site: string) => Verification[];
  /** Findings per site from elsewhere in the controller (damaged off-site copies), alerted like the rest. */
  findings?: (site: string) => Finding[];
}

export const SAMPLE_EVERY_MS = 5000;
export const SAMPLES_PER_SITE = 720;

class Ring {
  private readonly t = new Float64Array(SAMPLES_PER_SITE);
  private readonly rpo = new Float64Array(SAMPLES_PER_SITE);
  private readonly lag = new Float64Array(SAMPLES_PER_SITE);
  private n = 0;
  last = 0;
  add(t: number, rpo: number, lag: number): void {
    const i = this.n % SAMPLES_PER_SITE;
    this.t[i] = t;
    this.rpo[i] = rpo;
    this.lag[i] = lag;
    this.n++;
    this.last = t;
  }
  series(): { t: number[]; rpoAgeS: number[]; offsiteLagS: number[] } {
    const out = { t: [] as number[], rpoAgeS: [] as number[], offsiteLagS: [] as number[] };
    const count = Math.min(this.n, SAMPLES_PER_SITE);
    for (let k = this.n - count; k < this.n; k++) {
      const i = k % SAMPLES_PER_SITE;
      out.t.push(this.t[i]!);
      out.rpoAgeS.push(this.rpo[i]!);
      out.offsiteLagS.push(this.lag[i]!);
    }
    return out;
  }
}

export class HealthMonitor {
  private readonly healthMap = new Map<string, SiteHealth>();
  private readonly shown = new Map<string, string>();
  private readonly facts = new Map<string, SiteFacts>();
  private readonly rings = new Map<string, Ring>();
  private readonly dirty = new Set<string>();
  private readonly listeners: Array<(s: SiteSummary, h: SiteHealth) => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private readonly listeningSince: number;
  private lastEventAt: number;
  /** Per site: silence before this is not the agent's (the whole fleet was silent then). */
  private readonly grace = new Map<string, number>();
  /** The pseudo-site of controller-side alerts (not a valid site id, so never a real site). */
  static readonly CONTROLLER = '_controller';
  /** Assessments run, for /metrics. */
  assessments = 0;

  constructor(private readonly d: MonitorDeps) {
    this.listeningSince = d.clock();
    this.lastEventAt = d.clock();
  }

  onChange(fn: (s: SiteSummary, h: SiteHealth) => void): void {
    this.listeners.push(fn);
  }

  /** Assesses every known site now, then follows events and the clock. */
  start(): void {
    this.d.fleet.onApply((site) => {
      this.lastEventAt = this.d.clock();
      this.dirty.add(site);
      this.facts.delete(site);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          const sites = [...this.dirty];
          this.dirty.clear();
          for (const s of sites) this.assess(s);
        });
      }
    });
    this.assessAll();
    this.timer = setInterval(() => this.assessAll(), this.d.everyMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  assessAll(): void {
    const sites = this.d.fleet.sites();
    const now = this.d.clock();
    const p = this.d.policy ?? defaultPolicy;
    const shortest = Math.min(...sites.map((s) => (s.heartbeat?.intervalS ?? 5) * 1000));
    const limit = Math.max(p.offlineMinMs, 1.5 * shortest);
    const silent = sites.length >= 2 && now - this.lastEventAt > limit;
    if (silent) {
      // Everyone alive when the silence began gets its interval afresh; a site already offline stays so.
      for (const s of sites) {
        const from = Math.max(s.heartbeatAt ?? 0, this.grace.get(s.site) ?? this.listeningSince);
        const own = Math.max(p.offlineMinMs, p.offlineMissed * (s.heartbeat?.intervalS ?? 5) * 1000);
        if (this.lastEventAt - from <= own) this.grace.set(s.site, now);
      }
    }
    this.d.alerts.reconcile(HealthMonitor.CONTROLLER, silent ? [{
      key: 'events', code: alertCodes.NO_EVENTS, severity: 'critical', source: 'controller',
      message: `no event from any of ${sites.length} sites for ${Math.round((now - this.lastEventAt) / 1000)} s: check the controller's NATS connection and the central network`,
    }] : [], now);
    for (const s of sites) this.assess(s.site);
  }

  health(site: string): SiteHealth | undefined {
    return this.healthMap.get(site) ?? (this.d.fleet.hasSite(site) ? this.assess(site) : undefined);
  }

  summaries(): SiteSummary[] {
    return [...this.healthMap.values()].sort((a, b) => a.site.localeCompare(b.site)).map((h) => this.summary(h));
  }

  counts(): Record<HealthState, number> {
    const c: Record<HealthState, number> = { ok: 0, warning: 0, critical: 0, offline: 0 };
    for (const h of this.healthMap.values()) c[h.state]++;
    return c;
  }

  /** RPO age and off-site lag samples of `site`, oldest first. */
  series(site: string): { t: number[]; rpoAgeS: number[]; offsiteLagS: number[] } {
    return this.rings.get(site)?.series() ?? { t: [], rpoAgeS: [], offsiteLagS: [] };
  }

  summary(h: SiteHealth): SiteSummary {
    const worst = h.reasons.find((r) => r.severity === 'critical') ?? h.reasons[0];
    const free = h.disks.filter((x) => x.sizeBytes && x.freeBytes !== undefined).map((x) => x.freeBytes! / x.sizeBytes!);
    return {
      site: h.site, state: h.state, reasons: h.reasons.length, ...(worst ? { headline: worst.message } : {}),
      ...(h.lastHeartbeatAt !== undefined ? { lastHeartbeatAt: h.lastHeartbeatAt } : {}), ...(h.agentVersion ? { agentVersion: h.agentVersion } : {}),
      ...(h.lastBackupAt ? { lastBackupAt: h.lastBackupAt } : {}), ...(h.rpoAgeS !== undefined ? { rpoAgeS: h.rpoAgeS } : {}),
      ...(h.rpoTargetS !== undefined ? { rpoTargetS: h.rpoTargetS } : {}), ...(h.offsiteLagS !== undefined ? { offsiteLagS: h.offsiteLagS } : {}),
      ...(h.catchUp ? { catchUp: h.catchUp } : {}), diskState: h.diskState, ...(free.length ? { diskFree: Math.round(Math.min(...free) * 1000) / 1000 } : {}),
      openAlerts: this.d.alerts.openFor(h.site).length, stores: h.stores.length, ...(h.lastVerifiedAt ? { lastVerifiedAt: h.lastVerifiedAt } : {}),
    };
  }

  private factsOf(site: string): SiteFacts | undefined {
    const cached = this.facts.get(site);
    if (cached) return cached;
    const s = this.d.fleet.site(site);
    if (!s) return undefined;
    const log = this.d.fleet.log(site, 500);
    const orders = this.d.fleet.orderIds(site).flatMap((id) => {
      const o = this.d.book.get(id);
      if (!o) return [];
      const v = orderView(o, this.d.fleet.statuses(id));
      return [{ id, state: v.state, at: v.updatedAt, ...(v.result ? { result: v.result } : {}) }];
    });
    const latest = this.d.fleet.snapshots(site)[0];
    const f: SiteFacts = {
      site, firstSeenAt: s.firstSeenAt, ...(s.heartbeat ? { heartbeat: s.heartbeat } : {}), ...(s.heartbeatAt !== undefined ? { heartbeatAt: s.heartbeatAt } : {}),
      agentAlerts: this.d.fleet.agentAlerts(site), log, snapshots: latest ? [latest] : [],
      verifications: verificationsOf(log, orders, this.d.drills?.(site) ?? []),
    };
    this.facts.set(site, f);
    return f;
  }

  private assess(site: string): SiteHealth | undefined {
    const f = this.factsOf(site);
    if (!f) return undefined;
    const now = this.d.clock();
    const h = assessSite({ ...f, listeningSince: Math.max(this.listeningSince, this.grace.get(site) ?? 0) }, now, this.d.policy ?? defaultPolicy);
    this.assessments++;
    this.healthMap.set(site, h);
    const changes = this.d.alerts.reconcile(site, [...h.reasons, ...(this.d.findings?.(site) ?? [])], now);
    let ring = this.rings.get(site);
    if (!ring) this.rings.set(site, (ring = new Ring()));
    if (now - ring.last >= SAMPLE_EVERY_MS) ring.add(now, h.rpoAgeS ?? 0, h.offsiteLagS ?? 0);
    const s = this.summary(h);
    const key = JSON.stringify(s);
    if (this.shown.get(site) !== key || changes.length > 0) {
      this.shown.set(site, key);
      for (const fn of this.listeners) fn(s, h);
    }
    return h;
  }
}
