/**
 * alerts/: what a person must know about (SOP 5.5). The AlertBook turns each site's findings
 * (health/assess.ts, which also carries the agents' own alerts) into alerts that open once per
 * cause (site + key), update when their severity or message changes, resolve by themselves when
 * the cause is gone, and can be acknowledged by a person. Changes go to the dashboard, the
 * notifier (webhooks, e-mail) and the alert store (KV, so acks and open alerts survive a restart).
 *
 * `reconcile` is deterministic given the book's state, the findings and `now`.
 */
import { randomUUID } from 'node:crypto';
import { MedvaultError, codes } from '@medvault/protocol';
import type { Finding, Severity } from '../health/assess.js';

export interface AlertRecord {
  id: string;
  site: string;
  key: string;
  code: string;
  severity: Severity;
  message: string;
  store?: string;
  source: Finding['source'];
  state: 'open' | 'resolved';
  openedAt: number;
  updatedAt: number;
  resolvedAt?: number;
  ack?: { by: string; at: number; note?: string };
  /** How often it changed while open. */
  updates: number;
}

export type AlertChange = { kind: 'open' | 'update' | 'escalate' | 'resolve' | 'ack'; alert: AlertRecord };

/** Message-only changes (e.g. "offline for 3 min" → "4 min") update at most this often. */
export const MESSAGE_UPDATE_MS = 60_000;
export const MAX_RESOLVED = 10_000;

export class AlertBook {
  private readonly byId = new Map<string, AlertRecord>();
  /** Open alerts by `site\0key`. */
  private readonly open = new Map<string, AlertRecord>();
  private readonly listeners: Array<(c: AlertChange) => void> = [];

  constructor(private readonly newId: () => string = randomUUID) {}

  onChange(fn: (c: AlertChange) => void): void {
    this.listeners.push(fn);
  }

  /** Loads alerts kept from before a restart (no change events). */
  load(records: AlertRecord[]): void {
    for (const r of records.sort((a, b) => a.updatedAt - b.updatedAt)) {
      this.byId.set(r.id, r);
      if (r.state === 'open') this.open.set(`${r.site}\0${r.key}`, r);
    }
  }

  /** Makes `site`'s open alerts match `findings` at `now`; returns (and emits) what changed. */
  reconcile(site: string, findings: Finding[], now: number): AlertChange[] {
    const changes: AlertChange[] = [];
    const seen = new Set<string>();
    for (const f of findings) {
      const k = `${site}\0${f.key}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const cur = this.open.get(k);
      if (!cur) {
        const a: AlertRecord = {
          id: this.newId(), site, key: f.key, code: f.code, severity: f.severity, message: f.message, ...(f.store ? { store: f.store } : {}),
          source: f.source, state: 'open', openedAt: now, updatedAt: now, updates: 0,
        };
        this.open.set(k, a);
        this.byId.set(a.id, a);
        changes.push({ kind: 'open', alert: a });
      } else if (cur.severity !== f.severity || cur.code !== f.code || (cur.message !== f.message && now - cur.updatedAt >= MESSAGE_UPDATE_MS)) {
        const escalated = cur.severity === 'warning' && f.severity === 'critical';
        Object.assign(cur, { code: f.code, severity: f.severity, message: f.message, updatedAt: now, updates: cur.updates + 1 });
        changes.push({ kind: escalated ? 'escalate' : 'update', alert: cur });
      }
    }
    for (const [k, a] of this.open) {
      if (a.site !== site || seen.has(k)) continue;
      this.open.delete(k);
      Object.assign(a, { state: 'resolved', resolvedAt: now, updatedAt: now });
      changes.push({ kind: 'resolve', alert: a });
    }
    this.trim();
    for (const c of changes) for (const fn of this.listeners) fn(c);
    return changes;
  }

  /** A person has seen it. Acknowledging does not close it: only the cause going away does. */
  acknowledge(id: string, by: string, now: number, note?: string): AlertRecord {
    const a = this.byId.get(id);
    if (!a) throw new MedvaultError(codes.NOT_FOUND, `alert ${id} is unknown`);
    if (a.state !== 'open') throw new MedvaultError(codes.CONFLICT, `alert ${id} is already resolved`);
    if (a.ack) return a;
    a.ack = { by, at: now, ...(note ? { note } : {}) };
    a.updatedAt = now;
    for (const fn of this.listeners) fn({ kind: 'ack', alert: a });
    return a;
  }

  get(id: string): AlertRecord | undefined {
    return this.byId.get(id);
  }

  /** Alerts, newest change first, filtered. */
  list(filter: { state?: 'open' | 'resolved'; site?: string; limit?: number } = {}): AlertRecord[] {
    const src = filter.state === 'open' ? [...this.open.values()] : [...this.byId.values()];
    return src
      .filter((a) => (!filter.state || a.state === filter.state) && (!filter.site || a.site === filter.site))
      .sort((a, b) => b.updatedAt - a.updatedAt)
      .slice(0, filter.limit ?? 1000);
  }

  openFor(site: string): AlertRecord[] {
    return [...this.open.values()].filter((a) => a.site === site);
  }

  counts(): Record<Severity, number> & { acknowledged: number } {
    const c = { warning: 0, critical: 0, acknowledged: 0 };
    for (const a of this.open.values()) {
      c[a.severity]++;
      if (a.ack) c.acknowledged++;
    }
    return c;
  }

  private trim(): void {
    if (this.byId.size - this.open.size <= MAX_RESOLVED) return;
    for (const [id, a] of this.byId) {
      if (this.byId.size - this.open.size <= MAX_RESOLVED) break;
      if (a.state === 'resolved') this.byId.delete(id);
    }
  }
}
