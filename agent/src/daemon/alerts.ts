/**
 * Alerts the agent raises (mv.alert.v1 through the durable spool): each condition has a key, is
 * sent once when it opens or its message changes, and once more when it resolves.
 */
import { validate, type Alert } from '@medvault/protocol';

export interface AlertInput {
  key: string;
  code: string;
  severity: Alert['severity'];
  message: string;
  store?: string;
  snapshot?: string;
}

/** What a resolved `disk:<path>` alert carries when the process did not raise it (Alerts.resolve). */
export const DISK_OK = { code: 'disk-ok', severity: 'critical' } as const;

export class Alerts {
  private readonly open = new Map<string, AlertInput>();
  constructor(private readonly deps: { site: string; send: (a: Alert) => void; now: () => number }) {}

  raise(a: AlertInput): void {
    this.settled.delete(a.key);
    const prev = this.open.get(a.key);
    if (prev && prev.message === a.message && prev.severity === a.severity) return;
    this.open.set(a.key, a);
    this.send(a, 'open');
  }

  /**
   * The condition is gone. One this process did not raise (an earlier run of the CLI, the daemon
   * before a restart) may still be open on the controller: it is resolved too, once per process
   * (`was` gives the code and severity the message carries); the controller ignores a key it does
   * not hold open.
   */
  resolve(key: string, message = 'resolved', was?: Pick<AlertInput, 'code' | 'severity' | 'store'>): void {
    const prev = this.open.get(key);
    if (prev) {
      this.open.delete(key);
      this.send({ ...prev, message }, 'resolved');
    } else if (was && !this.settled.has(key)) this.send({ key, message, ...was }, 'resolved');
    this.settled.add(key);
  }
  /** Keys resolved by this process: sent once (see resolve). */
  private readonly settled = new Set<string>();

  list(): AlertInput[] {
    return [...this.open.values()];
  }

  private send(a: AlertInput, state: Alert['state']): void {
    this.deps.send(
      validate(
        {
          type: 'mv.alert.v1', site: this.deps.site, code: a.code.slice(0, 64), severity: a.severity, key: a.key.slice(0, 300), state,
          message: a.message.slice(0, 2000), ...(a.store ? { store: a.store } : {}), ...(a.snapshot ? { snapshot: a.snapshot } : {}), at: this.deps.now(),
        },
        'mv.alert.v1',
      ),
    );
  }
}
