/**
 * Keeps alerts in the JetStream KV bucket MV_ALERTS (one key per alert id), so open alerts and
 * their acknowledgements survive a controller restart. Writes are queued per alert, last state
 * wins; a failed write is logged and retried with the next change.
 */
import type { KvBucket } from '../bus.js';
import type { Log } from '../log.js';
import type { AlertRecord } from './alert-book.js';

export const ALERTS_BUCKET = 'MV_ALERTS';

export class AlertStore {
  private readonly revisions = new Map<string, number>();
  private readonly pending = new Map<string, AlertRecord>();
  private flushing: Promise<void> | undefined;

  constructor(private readonly kv: KvBucket, private readonly log: Log) {}

  async loadAll(): Promise<AlertRecord[]> {
    const out: AlertRecord[] = [];
    for (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (!e) continue;
      try {
        out.push(JSON.parse(Buffer.from(e.value).toString('utf8')) as AlertRecord);
        this.revisions.set(k, e.revision);
      } catch {
        this.log.warn({ key: k }, 'unreadable alert record skipped');
      }
    }
    return out;
  }

  save(a: AlertRecord): void {
    this.pending.set(a.id, structuredClone(a));
    this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
  }

  /** Resolves once every save so far is written (or failed). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.pending.size) {
      const [id, a] = this.pending.entries().next().value as [string, AlertRecord];
      this.pending.delete(id);
      const value = Buffer.from(JSON.stringify(a));
      try {
        const rev = this.revisions.get(id);
        this.revisions.set(id, rev === undefined ? await this.kv.create(id, value) : await this.kv.update(id, value, rev));
      } catch (err) {
        const e = await this.kv.get(id).catch(() => undefined);
        if (e) this.revisions.set(id, e.revision);
        this.log.warn({ err: (err as Error).message, alert: id }, 'alert not saved; will retry on its next change');
      }
    }
  }
}
