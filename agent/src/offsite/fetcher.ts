/**
 * Off-site objects fetched in a thread of their own (fetch-worker.ts), so that receiving them (TLS,
 * the NATS client's parsing, the copy into one buffer, SHA-256) does not compete on the main
 * thread with the restore that uses them; the verified bytes are transferred back, not copied.
 */
import type { ObjectKind } from '@medvault/protocol';
import { WorkerCalls, startWorker } from '@medvault/protocol/worker';
import type { LinkOptions } from '../replicate/link.js';

/** What the fetch thread is asked. */
export interface FetchRequest {
  kind: ObjectKind;
  hash: string;
}

export class Fetcher {
  private readonly calls: WorkerCalls<FetchRequest, Uint8Array | undefined>;

  /** `link`: the options of the Link it copies (a function-valued `log` stays behind). */
  constructor(link: LinkOptions, site: string, repo: string) {
    const { log: _log, ...opts } = link;
    this.calls = new WorkerCalls(() => startWorker(import.meta.url, 'fetch-worker', { link: opts, site, repo }), 'off-site fetch thread');
  }

  /** One object, verified as OffsiteStore.read does; undefined when it is not off site. */
  async fetch(kind: ObjectKind, hash: string): Promise<Buffer | undefined> {
    const b = await this.calls.call({ kind, hash });
    return b && Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Ends the thread (and its connection); the next fetch starts a new one. */
  close(): Promise<void> {
    return this.calls.close();
  }
}
