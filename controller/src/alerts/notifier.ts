/**
 * Sends alert changes to the configured webhooks (POST JSON) and by e-mail (SMTP): when an alert
 * opens, escalates to critical, or resolves, if its severity reaches `min_severity`. Deliveries run
 * in a queue off the hot path, each retried with backoff (1 s, 5 s, 25 s) and then logged as lost.
 */
import { z } from 'zod';
import type { Log } from '../log.js';
import type { AlertChange, AlertRecord } from './alert-book.js';
import { sendMail, type SmtpOptions } from './smtp.js';

export const alertsConfigSchema = z
  .strictObject({
    /** URLs that receive `{event, alert}` as JSON. */
    webhooks: z.array(z.string().regex(/^https?:\/\/\S+$/, 'an http(s) URL')).max(20).default([]),
    min_severity: z.enum(['warning', 'critical']).default('warning'),
    /** Link to the dashboard in e-mails. */
    dashboard_url: z.string().regex(/^https?:\/\/\S+$/).optional(),
    smtp: z
      .strictObject({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(25),
        from: z.string().regex(/^[^\s<>@]+@[^\s<>@]+$/, 'an e-mail address'),
        to: z.array(z.string().regex(/^[^\s<>@]+@[^\s<>@]+$/, 'an e-mail address')).min(1),
        starttls: z.boolean().default(false),
        user: z.string().min(1).optional(),
        password_file: z.string().min(1).optional(),
      })
      .optional(),
  })
  .default({ webhooks: [], min_severity: 'warning' });
export type AlertsConfig = z.infer<typeof alertsConfigSchema>;

export interface NotifierDeps {
  config: AlertsConfig;
  log: Log;
  /** The SMTP password (read from password_file by the caller). */
  smtpPassword?: string;
  delaysMs?: number[];
  send?: { webhook?: (url: string, body: string) => Promise<void>; mail?: typeof sendMail };
}

export interface NotifyStats {
  sent: number;
  failed: number;
  queued: number;
}

async function postJson(url: string, body: string): Promise<void> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
}

export class Notifier {
  private chain: Promise<void> = Promise.resolve();
  readonly stats: NotifyStats = { sent: 0, failed: 0, queued: 0 };
  private stopped = false;

  constructor(private readonly d: NotifierDeps) {}

  /** Queues the deliveries this change calls for. */
  notify(c: AlertChange): void {
    if (c.kind === 'update' || c.kind === 'ack') return;
    const { config } = this.d;
    if (config.min_severity === 'critical' && c.alert.severity !== 'critical') return;
    const event = c.kind === 'resolve' ? 'resolved' : c.kind === 'escalate' ? 'escalated' : 'opened';
    const snapshot: AlertRecord = structuredClone(c.alert);
    const body = JSON.stringify({ event, alert: snapshot });
    for (const url of config.webhooks) this.enqueue(`webhook ${url}`, () => (this.d.send?.webhook ?? postJson)(url, body));
    const smtp = config.smtp;
    if (smtp) {
      const o: SmtpOptions = { host: smtp.host, port: smtp.port, starttls: smtp.starttls, ...(smtp.user ? { user: smtp.user, password: this.d.smtpPassword ?? '' } : {}) };
      const subject = `[medvault] ${event === 'resolved' ? 'RESOLVED' : snapshot.severity.toUpperCase()} ${snapshot.site}: ${snapshot.message}`.slice(0, 200);
      const text = [
        `Site: ${snapshot.site}`, `State: ${event}`, `Severity: ${snapshot.severity}`, `Code: ${snapshot.code}`, ...(snapshot.store ? [`Store: ${snapshot.store}`] : []),
        `Opened: ${new Date(snapshot.openedAt).toISOString()}`, ...(snapshot.resolvedAt ? [`Resolved: ${new Date(snapshot.resolvedAt).toISOString()}`] : []),
        '', snapshot.message, '', ...(config.dashboard_url ? [`${config.dashboard_url.replace(/\/$/, '')}/#/site/${snapshot.site}`] : []),
      ].join('\n');
      this.enqueue(`mail to ${smtp.to.join(',')}`, () => (this.d.send?.mail ?? sendMail)(o, { from: smtp.from, to: smtp.to, subject, text }));
    }
  }

  /** Resolves when everything queued so far was delivered or given up. */
  idle(): Promise<void> {
    return this.chain;
  }

  stop(): void {
    this.stopped = true;
  }

  private enqueue(what: string, send: () => Promise<void>): void {
    this.stats.queued++;
    const delays = this.d.delaysMs ?? [1000, 5000, 25_000];
    this.chain = this.chain.then(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await send();
          this.stats.sent++;
          break;
        } catch (err) {
          if (attempt >= delays.length || this.stopped) {
            this.stats.failed++;
            this.d.log.error({ err: (err as Error).message, to: what }, 'alert notification lost');
            break;
          }
          this.d.log.warn({ err: (err as Error).message, to: what, attempt }, 'alert notification failed; retrying');
          await new Promise((r) => setTimeout(r, delays[attempt]));
        }
      }
      this.stats.queued--;
    });
  }
}
