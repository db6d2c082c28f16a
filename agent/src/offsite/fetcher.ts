/**
 * Off-site objects fetched in a thread of their own (fetch-worker.ts), so that receiving them (TLS,
 * the NATS client's parsing, the copy into one buffer, SHA-256) does not compete on the main
 * thread with the restore that uses them; the verified bytes are transferred back, not copied.
 * The thread is started at the first fetch and keeps the process alive only while a fetch runs.
 */
import type { Worker } from 'node:worker_threads';
import { MedvaultError, codes, type ErrorCode, type ObjectKind } from '@medvault/protocol';
import type { LinkOptions } from '../replicate/link.js';
import { startWorker } from '../platform/worker.js';

type Reply = { seq: number; data?: Uint8Array; missing?: true; error?: { code?: ErrorCode; message: string } };

export class Fetcher {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, { w: Worker; resolve: (b: Buffer | undefined) => void; reject: (e: Error) => void }>();
  private seq = 0;

  /** `link`: the options of the Link it copies (a function-valued `log` stays behind). */
  constructor(
    private readonly link: LinkOptions,
    private readonly site: string,
    private readonly repo: string,
  ) {}

  /** One object, verified as OffsiteStore.read does; undefined when it is not off site. */
  fetch(kind: ObjectKind, hash: string): Promise<Buffer | undefined> {
    const w = (this.worker ??= this.start());
    const seq = ++this.seq;
    w.ref();
    return new Promise((resolve, reject) => {
      this.calls.set(seq, { w, resolve, reject });
      w.postMessage({ seq, kind, hash });
    });
  }

  /** Ends the thread (and its connection); the next fetch starts a new one. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.fail(w, new MedvaultError(codes.TRANSPORT_FAILED, 'off-site fetch cancelled: closed'));
    await w?.terminate();
  }

  private start(): Worker {
    const { log: _log, ...link } = this.link;
    const w = startWorker(import.meta.url, 'fetch-worker', { link, site: this.site, repo: this.repo });
    w.unref();
    w.on('message', (m: Reply) => {
      const c = this.calls.get(m.seq);
      if (!c) return;
      this.calls.delete(m.seq);
      if (![...this.calls.values()].some((o) => o.w === w)) w.unref();
      if (m.error) c.reject(new MedvaultError(m.error.code ?? codes.TRANSPORT_FAILED, m.error.message));
      else c.resolve(m.data ? Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength) : undefined);
    });
    const died = (err: Error) => this.fail(w, new MedvaultError(codes.TRANSPORT_FAILED, `off-site fetch thread failed: ${err.message}`, { cause: err }));
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`exited with code ${code}`)));
    return w;
  }

  /** Fails every call of the thread `w` and forgets it. */
  private fail(w: Worker | undefined, err: Error): void {
    if (!w) return;
    if (this.worker === w) this.worker = undefined;
    for (const [seq, c] of this.calls) if (c.w === w) (this.calls.delete(seq), c.reject(err));
  }
}
