/**
 * fleet/: what the controller knows about its sites, projected from the agents' events on
 * MV_EVENTS (heartbeats, backup logs, snapshots, order statuses). Rebuilt from the stream at start.
 *
 * Events are trusted only as far as NATS permissions go: the site in the subject is the sender's
 * (its credentials allow no other), and a message naming another site is dropped.
 */
import { decode, parseEventSubject, type Alert, type BackupLog, type EventType, type Heartbeat, type Message, type MessageType, type OrderStatus, type SnapshotEvent } from '@medvault/protocol';

const typeOf: Record<EventType, MessageType> = {
  heartbeat: 'mv.heartbeat.v1',
  log: 'mv.backup-log.v1',
  snapshot: 'mv.snapshot.v1',
  status: 'mv.order-status.v1',
  alert: 'mv.alert.v1',
  // The agent's audit chain: verified by `medvault-controller audit verify --site`, not projected.
  audit: 'mv.audit.v1',
  // Off-site needs lists: kept by the off-site retention book, not projected here.
  needs: 'mv.snapshot-needs.v1',
  drill: 'mv.drill-result.v1',
};

/** Bounds on what is kept in memory per site / order; the stream keeps everything. */
export const MAX_LOG_PER_SITE = 10_000;
export const MAX_SNAPSHOTS_PER_SITE = 10_000;
export const MAX_STATUSES_PER_ORDER = 1_000;

export interface SiteState {
  site: string;
  firstSeenAt: number;
  /** Stream time of the last event of any kind. */
  lastEventAt: number;
  /** The last heartbeat, and when the stream received it. */
  heartbeat?: Heartbeat;
  heartbeatAt?: number;
}

export interface EventInput {
  subject: string;
  data: Uint8Array;
  /** Stream time, ms. */
  time: number;
}

export class FleetRegistry {
  private readonly siteMap = new Map<string, SiteState>();
  private readonly logs = new Map<string, BackupLog[]>();
  private readonly snaps = new Map<string, Map<string, SnapshotEvent>>();
  private readonly statusMap = new Map<string, OrderStatus[]>();
  /** Open agent alerts per site, by key (mv.alert.v1 open/resolved). */
  private readonly alertMap = new Map<string, Map<string, Alert>>();
  /** Order ids per site, in the order their first status arrived. */
  private readonly siteOrders = new Map<string, Set<string>>();
  private readonly listeners: Array<(site: string, type: MessageType, time: number, msg: Message) => void> = [];

  /** Calls `fn` after every applied event (health, the dashboard's live view). */
  onApply(fn: (site: string, type: MessageType, time: number, msg: Message) => void): void {
    this.listeners.push(fn);
  }

  /** Applies one event; returns undefined when applied, else why it was dropped. */
  apply(m: EventInput): string | undefined {
    const s = parseEventSubject(m.subject);
    if (!s) return `not an event subject: ${m.subject}`;
    let msg;
    try {
      msg = decode(m.data, typeOf[s.event]);
    } catch (err) {
      return (err as Error).message;
    }
    if (msg.site !== s.site) return `${msg.type} names site ${msg.site} but came from site ${s.site}`;
    const site = this.touch(s.site, m.time);
    switch (msg.type) {
      case 'mv.heartbeat.v1':
        if (!site.heartbeat || msg.sentAt >= site.heartbeat.sentAt) {
          site.heartbeat = msg;
          site.heartbeatAt = m.time;
        }
        break;
      case 'mv.backup-log.v1':
        push(this.logs, s.site, msg, MAX_LOG_PER_SITE);
        break;
      case 'mv.snapshot.v1': {
        let snaps = this.snaps.get(s.site);
        if (!snaps) this.snaps.set(s.site, (snaps = new Map()));
        snaps.set(msg.id, msg);
        if (snaps.size > MAX_SNAPSHOTS_PER_SITE) snaps.delete(snaps.keys().next().value!);
        break;
      }
      case 'mv.order-status.v1':
        push(this.statusMap, msg.orderId, msg, MAX_STATUSES_PER_ORDER);
        {
          let ids = this.siteOrders.get(s.site);
          if (!ids) this.siteOrders.set(s.site, (ids = new Set()));
          ids.add(msg.orderId);
        }
        break;
      case 'mv.alert.v1': {
        let open = this.alertMap.get(s.site);
        if (!open) this.alertMap.set(s.site, (open = new Map()));
        const prev = open.get(msg.key);
        if (prev && prev.at > msg.at) break;
        if (msg.state === 'open') open.set(msg.key, msg);
        else open.delete(msg.key);
        break;
      }
    }
    for (const fn of this.listeners) fn(s.site, msg.type, m.time, msg);
    return undefined;
  }

  hasSite(site: string): boolean {
    return this.siteMap.has(site);
  }

  sites(): SiteState[] {
    return [...this.siteMap.values()].sort((a, b) => a.site.localeCompare(b.site));
  }

  site(site: string): SiteState | undefined {
    return this.siteMap.get(site);
  }

  /** Snapshots of `site`, newest first. */
  snapshots(site: string): SnapshotEvent[] {
    return [...(this.snaps.get(site)?.values() ?? [])].sort((a, b) => b.time - a.time);
  }

  /** Backup log entries of `site`, newest first, at most `limit`. */
  log(site: string, limit = 1000): BackupLog[] {
    const l = this.logs.get(site) ?? [];
    return l.slice(Math.max(0, l.length - limit)).reverse();
  }

  /** The agent's open alerts for `site`. */
  agentAlerts(site: string): Alert[] {
    return [...(this.alertMap.get(site)?.values() ?? [])];
  }

  /** Ids of orders `site` has reported on, oldest first. */
  orderIds(site: string): string[] {
    return [...(this.siteOrders.get(site) ?? [])];
  }

  /** Status events of one order as they arrived. */
  statuses(orderId: string): OrderStatus[] {
    return this.statusMap.get(orderId) ?? [];
  }

  private touch(site: string, time: number): SiteState {
    let s = this.siteMap.get(site);
    if (!s) this.siteMap.set(site, (s = { site, firstSeenAt: time, lastEventAt: time }));
    s.lastEventAt = Math.max(s.lastEventAt, time);
    return s;
  }
}

function push<T>(m: Map<string, T[]>, key: string, v: T, max: number): void {
  let l = m.get(key);
  if (!l) m.set(key, (l = []));
  l.push(v);
  if (l.length > max) l.splice(0, l.length - max);
}
