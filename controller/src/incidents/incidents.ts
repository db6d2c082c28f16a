/**
 * incidents/: the SOP 5.5 incident record. An incident is opened from an alert (its id) or by a
 * technician; it records the scope (sites, stores, paths, time window), proposes the snapshot to
 * restore, collects the restore orders raised for it (their outcome and per-file verification come
 * from the agents' order statuses), notes, and is closed with a resolution. It is exported as a
 * signed report.
 * Rules: every change is a compare-and-set of one KV record (MV_INCIDENTS) and audited; a closed
 * incident changes no more; opening one notifies IT and management (`[incidents] notify`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MedvaultError, codes, decode, encode, hash, orderId, site as siteId, streams, subjects, time, type Alert, type SnapshotEvent } from '@medvault/protocol';
import type { AlertBook, AlertRecord } from '../alerts/alert-book.js';
import { Notifier, type AlertsConfig } from '../alerts/notifier.js';
import type { Log } from '../log.js';
import type { AuditSink } from '../audit/trail.js';
import type { Bus, KvBucket } from '../bus.js';
import type { FleetRegistry } from '../fleet/registry.js';
import { parseInput } from '../http/validate.js';
import { orderView, type OrderBook, type OrderView } from '../orders/order-book.js';
import type { ReportInput } from '../reports/render.js';

export const INCIDENTS_BUCKET = 'MV_INCIDENTS';

const recipient = z.union([z.string().regex(/^https?:\/\/\S+$/), z.string().regex(/^[^\s<>@]+@[^\s<>@]+$/)], 'a webhook URL or an e-mail address');
/** `[incidents] notify = ["https://hooks.example/it", "management@clinic.example"]`: webhooks and e-mail (via [alerts.smtp]). */
export const incidentsConfigSchema = z.strictObject({ notify: z.array(recipient).max(50).default([]) }).default({ notify: [] });
export type IncidentsConfig = z.infer<typeof incidentsConfigSchema>;

const text = (max: number) => z.string().max(max);
/**
 * The notifier for opened incidents: `[incidents] notify` URLs as webhooks, its e-mail addresses
 * through `[alerts.smtp]` (an address without SMTP configured is a configuration error).
 */
export function incidentNotifier(c: IncidentsConfig | undefined, alerts: AlertsConfig | undefined, log: Log): Notifier | undefined {
  const to = (c?.notify ?? []).filter((r) => r.includes('@') && !/^https?:/.test(r));
  const webhooks = (c?.notify ?? []).filter((r) => /^https?:/.test(r));
  if (to.length === 0 && webhooks.length === 0) return undefined;
  if (to.length > 0 && !alerts?.smtp) throw new MedvaultError(codes.CONFIG_INVALID, `[incidents] notify: e-mail recipients (${to.join(', ')}) need [alerts.smtp]`);
  return new Notifier({
    log, ...(alerts?.smtp?.password_file && to.length ? { smtpPassword: readFileSync(alerts.smtp.password_file, 'utf8').trim() } : {}), config: { webhooks, min_severity: 'warning', ...(alerts?.dashboard_url ? { dashboard_url: alerts.dashboard_url } : {}), ...(alerts?.smtp && to.length ? { smtp: { ...alerts.smtp, to } } : {}) },
  });
}

export const scopeSchema = z.strictObject({
  sites: z.array(siteId).max(1000).default([]),
  stores: z.array(text(200)).max(200).default([]),
  paths: z.array(text(8192)).max(1000).default([]),
  from: time.optional(),
  to: time.optional(),
});

export const incidentSchema = z.strictObject({
  id: z.string().uuid(),
  title: text(300),
  state: z.enum(['open', 'closed']),
  openedAt: time,
  openedBy: text(200),
  alert: z.strictObject({ id: text(100), site: siteId, code: text(64), severity: text(20), message: text(2000), key: text(300), store: text(200).optional(), snapshot: hash.optional() }).optional(),
  scope: scopeSchema,
  proposed: z.strictObject({ site: siteId, store: text(200), snapshot: hash, time, reason: text(1000) }).optional(),
  orders: z.array(z.strictObject({ id: orderId, at: time, by: text(200) })).max(1000),
  notes: z.array(z.strictObject({ at: time, by: text(200), text: text(10_000) })).max(10_000),
  closedAt: time.optional(),
  closedBy: text(200).optional(),
  resolution: text(10_000).optional(),
});
export type Incident = z.infer<typeof incidentSchema>;

export const openInput = z.strictObject({
  alert: z.string().max(100).optional(),
  title: z.string().min(3).max(300).optional(),
  scope: scopeSchema.partial().optional(),
}).refine((o) => o.alert !== undefined || (o.title !== undefined && (o.scope?.sites?.length ?? 0) > 0), 'give an alert id, or a title and at least one site in scope');

/**
 * The snapshot to restore: after a ransomware alert the last snapshot of the store before the
 * suspicious one; otherwise the newest snapshot (of the scoped stores) before the window starts.
 */
export function proposeSnapshot(snaps: SnapshotEvent[], o: { site: string; stores: string[]; suspect?: string; before?: number }): Incident['proposed'] {
  const suspect = o.suspect ? snaps.find((s) => s.id === o.suspect) : undefined;
  const stores = suspect ? [suspect.store] : o.stores;
  const limit = suspect ? suspect.time : (o.before ?? Infinity);
  const pick = snaps.filter((s) => (stores.length === 0 || stores.includes(s.store)) && s.time < limit && s.id !== o.suspect).sort((a, b) => b.time - a.time)[0];
  if (!pick) return undefined;
  const reason = suspect
    ? `last snapshot of ${pick.store} before the suspicious snapshot ${suspect.id.slice(0, 12)} (${new Date(suspect.time).toISOString()})`
    : `newest snapshot of ${pick.store} before the incident window${o.before !== undefined ? ` (${new Date(o.before).toISOString()})` : ''}`;
  return { site: o.site, store: pick.store, snapshot: pick.id, time: pick.time, reason };
}

export interface IncidentDeps {
  kv: KvBucket;
  bus: Pick<Bus, 'scanSubject'>;
  alerts: Pick<AlertBook, 'get'>;
  fleet: Pick<FleetRegistry, 'snapshots' | 'statuses'>;
  book: Pick<OrderBook, 'get'>;
  audit: AuditSink;
  clock: () => number;
  /** Queues the opening notice to IT and management. */
  notify?: Pick<Notifier, 'notify'>;
  newId?: () => string;
}

export class IncidentDesk {
  constructor(private readonly d: IncidentDeps) {}

  async get(id: string): Promise<Incident> {
    const r = await this.read(id);
    return r.incident;
  }

  async list(): Promise<Incident[]> {
    const out: Incident[] = [];
    for (const k of await this.d.kv.keys()) out.push((await this.read(k)).incident);
    return out.sort((a, b) => b.openedAt - a.openedAt);
  }

  /** The incident with each attached order's view (state, result, per-file verification). */
  async show(id: string): Promise<Incident & { orderViews: Array<OrderView & { id: string }> }> {
    const i = await this.get(id);
    const orderViews = i.orders.flatMap((o) => {
      const order = this.d.book.get(o.id);
      return order ? [{ id: o.id, ...orderView(order, this.d.fleet.statuses(o.id)) }] : [];
    });
    return { ...i, orderViews };
  }

  async open(input: z.input<typeof openInput>, by: string): Promise<Incident> {
    const o = parseInput(openInput, input, 'incident');
    const now = this.d.clock();
    let alert: Incident['alert'];
    if (o.alert !== undefined) {
      const a = this.d.alerts.get(o.alert);
      if (!a) throw new MedvaultError(codes.NOT_FOUND, `alert ${o.alert} is unknown`);
      const agent = a.source === 'agent' ? await this.agentAlert(a) : undefined;
      alert = { id: a.id, site: a.site, code: a.code, severity: a.severity, message: a.message, key: a.key, ...(a.store ? { store: a.store } : {}), ...(agent?.snapshot ? { snapshot: agent.snapshot } : {}) };
    }
    const scope = scopeSchema.parse({
      ...o.scope,
      sites: o.scope?.sites?.length ? o.scope.sites : alert ? [alert.site] : [],
      stores: o.scope?.stores?.length ? o.scope.stores : alert?.store ? [alert.store] : [],
      ...(o.scope?.to === undefined && alert ? { to: now } : {}),
    });
    const site = scope.sites[0]!;
    const proposed = proposeSnapshot(this.d.fleet.snapshots(site), {
      site, stores: scope.stores, ...(alert?.snapshot ? { suspect: alert.snapshot } : {}), ...(scope.from !== undefined ? { before: scope.from } : alert ? { before: this.d.alerts.get(alert.id)!.openedAt } : {}),
    });
    // The loss window starts after the last good snapshot unless the technician said otherwise.
    if (scope.from === undefined && proposed && alert) scope.from = proposed.time + 1;
    const incident: Incident = {
      id: (this.d.newId ?? randomUUID)(), title: o.title ?? `${alert!.code} at ${alert!.site}${alert!.store ? `/${alert!.store}` : ''}`, state: 'open', openedAt: now, openedBy: by,
      ...(alert ? { alert } : {}), scope, ...(proposed ? { proposed } : {}), orders: [], notes: [],
    };
    await this.d.kv.create(incident.id, encode(incidentSchema.parse(incident)));
    await this.d.audit.record({ actor: { kind: 'user', id: by }, action: 'incident.open', object: `incident:${incident.id}`, result: 'ok', detail: { title: incident.title, alert: alert?.id ?? null, sites: scope.sites.join(','), proposed: proposed?.snapshot ?? null } });
    this.d.notify?.notify({
      kind: 'open',
      alert: {
        id: incident.id, site: site, key: `incident:${incident.id}`, code: 'MV_INCIDENT_OPEN', severity: 'critical', source: 'controller', state: 'open', openedAt: now, updatedAt: now, updates: 0,
        message: `incident opened by ${by}: ${incident.title}${proposed ? `; proposed restore point ${proposed.snapshot.slice(0, 12)} (${new Date(proposed.time).toISOString()})` : ''}`,
        ...(scope.stores[0] ? { store: scope.stores[0] } : {}),
      },
    });
    return incident;
  }

  /** Attaches a restore order (it must exist in the order book) to an open incident. */
  attach(id: string, order: string, by: string): Promise<Incident> {
    parseInput(orderId, order, 'order');
    if (!this.d.book.get(order)) throw new MedvaultError(codes.NOT_FOUND, `order ${order} is unknown`);
    return this.change(id, by, 'incident.attach', { order }, (i) => {
      if (!i.orders.some((o) => o.id === order)) i.orders.push({ id: order, at: this.d.clock(), by });
    });
  }

  note(id: string, note: string, by: string): Promise<Incident> {
    const t = parseInput(z.string().min(1, 'an empty note').max(10_000), note, 'note');
    return this.change(id, by, 'incident.note', { chars: t.length }, (i) => void i.notes.push({ at: this.d.clock(), by, text: t }));
  }

  close(id: string, resolution: string, by: string): Promise<Incident> {
    const t = parseInput(z.string().min(3, 'say how it was resolved').max(10_000), resolution, 'resolution');
    return this.change(id, by, 'incident.close', { resolution: t.slice(0, 500) }, (i) => Object.assign(i, { state: 'closed', closedAt: this.d.clock(), closedBy: by, resolution: t }));
  }

  /** The incident as a report (sign it with signReport, render it with renderReport). */
  async report(id: string, by: string): Promise<ReportInput> {
    const i = await this.show(id);
    const iso = (t?: number) => (t === undefined ? '-' : new Date(t).toISOString());
    const verified = i.orderViews.filter((v) => v.state === 'done' && v.result && v.result.failed.length === 0);
    return {
      type: 'mv.report.v1', kind: 'incident', title: `Incident: ${i.title}`, subjects: [i.id, ...i.scope.sites, ...i.orders.map((o) => o.id)],
      period: { from: i.scope.from ?? i.openedAt, to: i.closedAt ?? this.d.clock() }, generatedAt: this.d.clock(), generatedBy: by,
      mark: i.state === 'closed' && i.orderViews.every((v) => v.state === 'done' && v.result?.failed.length === 0) ? 'pass' : 'fail',
      sections: [
        { heading: 'Incident', facts: [
          { label: 'Id', value: i.id }, { label: 'State', value: i.state, mark: i.state === 'closed' ? 'pass' : 'warn' },
          { label: 'Opened', value: `${iso(i.openedAt)} by ${i.openedBy}` }, { label: 'Closed', value: i.closedAt ? `${iso(i.closedAt)} by ${i.closedBy}` : 'not yet' },
          ...(i.alert ? [{ label: 'From alert', value: `${i.alert.code} (${i.alert.severity}) ${i.alert.id}: ${i.alert.message}` }] : []),
        ] },
        { heading: 'Scope', facts: [
          { label: 'Sites', value: i.scope.sites.join(', ') || '-' }, { label: 'Stores', value: i.scope.stores.join(', ') || 'all' },
          { label: 'Paths', value: i.scope.paths.join(', ') || 'all' }, { label: 'Window', value: `${iso(i.scope.from)} to ${iso(i.scope.to)}` },
        ] },
        { heading: 'Restore point', mark: i.proposed ? 'pass' : 'fail', facts: i.proposed
          ? [{ label: 'Proposed snapshot', value: `${i.proposed.snapshot} (${i.proposed.site}/${i.proposed.store}, ${iso(i.proposed.time)})` }, { label: 'Why', value: i.proposed.reason }]
          : [{ label: 'Proposed snapshot', value: 'none found in scope', mark: 'fail' }] },
        { heading: 'Restores and verification', mark: i.orderViews.length > 0 && verified.length === i.orderViews.length ? 'pass' : 'fail',
          facts: [{ label: 'Orders', value: i.orderViews.length }, { label: 'Verified file by file', value: verified.length }],
          tables: [{ columns: ['order', 'site', 'snapshot', 'paths', 'state', 'files', 'verified', 'failed'], rows: i.orderViews.map((v) => ({
            cells: [v.id, v.order.site, v.result?.snapshot.slice(0, 12) ?? String(v.order.snapshot).slice(0, 12), v.order.paths.join(', ') || '(all)', v.state, v.result?.files ?? '-', v.result?.verified ?? '-', v.result ? v.result.failed.length : '-'],
            mark: v.state === 'done' && v.result?.failed.length === 0 ? 'pass' as const : 'fail' as const,
          })) }] },
        { heading: 'Notes', paragraphs: i.notes.map((n) => `${iso(n.at)} ${n.by}: ${n.text}`) },
        { heading: 'Resolution', mark: i.resolution ? 'pass' : 'fail', paragraphs: [i.resolution ?? 'not resolved yet'] },
      ],
    };
  }

  /** The agent's own alert behind a controller alert (for its snapshot), from MV_EVENTS. */
  private async agentAlert(a: AlertRecord): Promise<Alert | undefined> {
    let found: Alert | undefined;
    for await (const m of this.d.bus.scanSubject(streams.events.name, subjects.event(a.site, 'alert'))) {
      try {
        const x = decode(m.data, 'mv.alert.v1');
        if (x.site === a.site && `agent:${x.key}` === a.key && x.state === 'open') found = x;
      } catch {
        continue;
      }
    }
    return found;
  }

  private async read(id: string): Promise<{ incident: Incident; revision: number }> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new MedvaultError(codes.MESSAGE_INVALID, `incident id ${id}: a UUID`);
    const e = await this.d.kv.get(id);
    if (!e) throw new MedvaultError(codes.NOT_FOUND, `incident ${id} is unknown`);
    const r = incidentSchema.safeParse(JSON.parse(Buffer.from(e.value).toString('utf8')));
    if (!r.success) throw new MedvaultError(codes.MESSAGE_INVALID, `incident ${id}: stored record is invalid: ${r.error.issues[0]!.message}`);
    return { incident: r.data, revision: e.revision };
  }

  private async change(id: string, by: string, action: string, detail: Record<string, string | number>, fn: (i: Incident) => void): Promise<Incident> {
    for (let attempt = 0; ; attempt++) {
      const { incident, revision } = await this.read(id);
      if (incident.state === 'closed') throw new MedvaultError(codes.CONFLICT, `incident ${id} is closed (${incident.resolution ?? ''}): it changes no more`);
      fn(incident);
      try {
        await this.d.kv.update(id, encode(incidentSchema.parse(incident)), revision);
      } catch (err) {
        if (attempt < 5 && err instanceof MedvaultError && err.code === codes.CONFLICT) continue;
        throw err;
      }
      await this.d.audit.record({ actor: { kind: 'user', id: by }, action, object: `incident:${id}`, result: 'ok', detail });
      return incident;
    }
  }
}
