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

export class Alerts {
  private readonly open = new Map<string, AlertInput>();
  constructor(private readonly deps: { site: string; send: (a: Alert) => void; now: () => number }) {}

  raise(a: AlertInput): void {
    const prev = this.open.get(a.key);
    if (prev && prev.message === a.message && prev.severity === a.severity) return;
    this.open.set(a.key, a);
    this.send(a, 'open');
  }

  resolve(key: string, message = 'resolved'): void {
    const prev = this.open.get(key);
    if (!prev) return;
    this.open.delete(key);
    this.send({ ...prev, message }, 'resolved');
  }

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
