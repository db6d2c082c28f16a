/**
 * MemLink: the in-memory twin of Link for tests — a list of streams held in arrays, with the
 * same duplicate-message-id rule as JetStream and a switch to make publishes fail like an outage.
 */
import { MSG_SIZE_HEADER, type Link, type LinkMessage } from './link.js';

interface Stored {
  subject: string;
  seq: number;
  data: Uint8Array;
  headers: Record<string, string>;
}

export class MemLink implements Link {
  readonly messages: Stored[] = [];
  private readonly ids = new Set<string>();
  private readonly followers = new Set<() => void>();
  /** While true, every publish fails as if NATS were down. */
  down = false;
  /** Publishes that reached the link, duplicates included. */
  attempts = 0;
  /** What every follower reports as its silence (`Follower.silentMs`): set it to play a wedged consumer. */
  followerSilentMs = 0;

  get connected(): boolean {
    return !this.down;
  }

  async publish(subject: string, payload: Uint8Array, opts: { msgID: string; headers?: Record<string, string> }): Promise<void> {
    this.attempts++;
    await Promise.resolve();
    if (this.down) throw Object.assign(new Error('link down'), { code: 'MV_ERR_TRANSPORT_FAILED' });
    if (this.ids.has(opts.msgID)) return;
    this.ids.add(opts.msgID);
    this.messages.push({ subject, seq: this.messages.length + 1, data: Uint8Array.from(payload), headers: { ...opts.headers } });
    for (const wake of this.followers) wake();
  }

  follow(_stream: string, filter: string, fromSeq: number, onMessage: (m: LinkMessage) => Promise<void>) {
    const re = filterRe(filter);
    let next = Math.max(1, fromSeq);
    let stopped = false;
    let wake: () => void = () => {};
    const loop = (async () => {
      while (!stopped) {
        const m = this.messages[next - 1];
        if (!m) {
          await new Promise<void>((r) => { wake = r; this.followers.add(r); });
          this.followers.delete(wake);
          continue;
        }
        next++;
        if (re.test(m.subject)) await onMessage({ subject: m.subject, seq: m.seq, data: m.data, header: (n) => m.headers[n] });
      }
    })();
    const silence = () => this.followerSilentMs;
    return { stop: async () => { stopped = true; wake(); await loop; }, get silentMs() { return silence(); } };
  }

  async *read(_stream: string, filter: string, opts: { headersOnly?: boolean } = {}): AsyncIterable<LinkMessage> {
    const re = filterRe(filter);
    for (const m of this.messages.slice()) {
      if (this.down) throw Object.assign(new Error('link down'), { code: 'MV_ERR_TRANSPORT_FAILED' });
      if (!re.test(m.subject)) continue;
      const headers: Record<string, string> = opts.headersOnly ? { ...m.headers, [MSG_SIZE_HEADER]: String(m.data.byteLength) } : m.headers;
      yield { subject: m.subject, seq: m.seq, data: opts.headersOnly ? new Uint8Array(0) : m.data, header: (n) => headers[n] };
    }
  }

  async close(): Promise<void> {}
}

/** A NATS subject filter (`*` one token, trailing `>` the rest) as a regular expression. */
function filterRe(filter: string): RegExp {
  return new RegExp(`^${filter.replace(/\./g, '\\.').replace(/\*/g, '[^.]+').replace(/>$/, '.+')}$`);
}
