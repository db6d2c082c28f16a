/**
 * ingest/: turns what agents replicate (MV_INBOX) into verified, immutable off-site copies
 * (MV_OFFSITE) and signed receipts (MV_CONTROL).
 *
 * For each object, in this order (a crash anywhere leaves the inbox parts unacked, so they come back):
 *  1. reassemble its parts (Assembler: subject = header, bounded memory, size cap);
 *  2. SHA-256 of the whole MUST equal the hash in its name, else terminate the parts, warn, no receipt;
 *  3. already receipted (OffsiteIndex)? go to 6 without storing it again;
 *  4. a copy already in MV_OFFSITE (stored, then a crash before the receipt)? verify it and go to 6,
 *     or purge it if it is incomplete or wrong;
 *  5. publish the parts to MV_OFFSITE (pipelined), read the copy back and verify its hash again;
 *  6. publish a signed mv.receipt.v1 to mv.v1.ctl.<site>.receipt, then ack the inbox parts.
 * Transport failures nak the parts for a later retry. Work on one object is serialised by key.
 */
import {
  MedvaultError,
  OBJECT_HEADER,
  codes,
  decodePart,
  encode,
  encodePartHeader,
  objectParts,
  sha256Hex,
  signMessage,
  streams,
  subjects,
  type Receipt,
  type SigningKey,
} from '@medvault/protocol';
import type { Bus, WorkMessage } from '../bus.js';
import type { Log } from '../log.js';
import { Assembler, objectKey, type AssemblyLimits, type CompleteObject, type ObjectId } from './assembler.js';
import type { OffsiteEntry, OffsiteIndex } from './offsite-index.js';

export const INGEST_DURABLE = 'mv-controller-ingest';

export interface IngestorDeps {
  bus: Pick<Bus, 'publish' | 'work' | 'countSubject' | 'readSubject' | 'purgeSubject'>;
  index: OffsiteIndex;
  key: SigningKey;
  clock: () => number;
  log: Log;
  limits?: Partial<AssemblyLimits>;
  /** Objects stored concurrently. */
  concurrency?: number;
}

export interface IngestStats {
  stored: number;
  receipted: number;
  duplicates: number;
  refused: number;
  failed: number;
  inProgress: { objects: number; bytes: number };
}

export const defaultLimits: AssemblyLimits = {
  maxObjectBytes: 64 * 1024 * 1024,
  maxObjects: 64,
  maxBytes: 256 * 1024 * 1024,
  timeoutMs: 60_000,
};

export class Ingestor {
  private readonly assembler: Assembler<WorkMessage>;
  private readonly running = new Set<Promise<void>>();
  private readonly byKey = new Map<string, Promise<void>>();
  private readonly refusedAt = new Map<string, number>();
  private readonly counts = { stored: 0, receipted: 0, duplicates: 0, refused: 0, failed: 0 };
  private work: Awaited<ReturnType<Bus['work']>> | undefined;
  private loop: Promise<void> | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly limits: AssemblyLimits;

  constructor(private readonly d: IngestorDeps) {
    const l = { ...defaultLimits, ...d.limits };
    this.limits = { ...l, maxBytes: Math.max(l.maxBytes, l.maxObjectBytes) };
    this.assembler = new Assembler(this.limits);
  }

  /** True while the inbox consumer runs (started and not ended); the systemd watchdog checks it. */
  get consuming(): boolean {
    return this.loop !== undefined && !this.ended;
  }

  stats(): IngestStats {
    return { ...this.counts, inProgress: this.assembler.inProgress };
  }

  /** Starts consuming MV_INBOX. Call after the OffsiteIndex has caught up with MV_CONTROL. */
  async start(): Promise<void> {
    this.work = await this.d.bus.work(streams.inbox.name, INGEST_DURABLE, { maxMessages: 16, ackWaitMs: 2 * this.limits.timeoutMs });
    const work = this.work;
    this.timer = setInterval(() => this.expire(), Math.max(1000, this.limits.timeoutMs / 4));
    this.timer.unref();
    this.loop = (async () => {
      for await (const m of work) await this.take(m);
    })()
      .catch((err) => this.d.log.error({ err }, 'ingest stopped'))
      .finally(() => (this.ended = true));
  }

  /** Stops taking messages and waits for objects being stored. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.work?.stop();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }

  private async take(m: WorkMessage): Promise<void> {
    const v = this.assembler.add(m.subject, m.header(OBJECT_HEADER), m.data, m, this.d.clock());
    switch (v.kind) {
      case 'pending':
        return;
      case 'busy':
        m.nak(1000);
        return;
      case 'invalid':
        this.counts.refused++;
        this.d.log.warn({ subject: m.subject, ...v.id, reason: v.reason }, 'invalid object part refused');
        v.handles.forEach((h) => h.term());
        return;
      case 'too-large':
        v.handles.forEach((h) => h.term());
        if (!this.firstRefusal(objectKey(v.id))) return;
        this.counts.refused++;
        this.d.log.error(
          { ...v.id, size: v.size, maxObjectBytes: this.limits.maxObjectBytes },
          'object larger than ingest.max_object_bytes refused: no receipt until the limit is raised',
        );
        return;
      case 'complete': {
        while (this.running.size >= (this.d.concurrency ?? 4)) await Promise.race(this.running);
        const key = objectKey(v.object);
        const prev = this.byKey.get(key) ?? Promise.resolve();
        const p: Promise<void> = prev.then(() => this.finish(v.object));
        this.byKey.set(key, p);
        this.running.add(p);
        void p.finally(() => {
          this.running.delete(p);
          if (this.byKey.get(key) === p) this.byKey.delete(key);
        });
        return;
      }
    }
  }

  /** True the first time `key` is refused within 10 minutes, so one object is logged once, not per part. */
  private firstRefusal(key: string): boolean {
    const now = this.d.clock();
    const at = this.refusedAt.get(key);
    if (at !== undefined && now - at < 10 * 60_000) return false;
    if (this.refusedAt.size >= 1000) this.refusedAt.clear();
    this.refusedAt.set(key, now);
    return true;
  }

  private expire(): void {
    for (const e of this.assembler.expire(this.d.clock())) {
      this.d.log.warn({ ...e.id, received: e.received, parts: e.parts }, 'incomplete object dropped: parts stopped arriving');
      e.handles.forEach((h) => h.term());
    }
  }

  private async finish(o: CompleteObject<WorkMessage>): Promise<void> {
    const tag = { site: o.site, repo: o.repo, kind: o.kind, hash: o.hash, size: o.size };
    if (o.actualHash !== o.hash) {
      this.counts.refused++;
      this.d.log.warn({ ...tag, actual: o.actualHash }, 'object hash mismatch: refused, no receipt');
      o.handles.forEach((h) => h.term());
      return;
    }
    try {
      let entry = this.d.index.get(o);
      if (entry) this.counts.duplicates++;
      else entry = await this.store(o);
      await this.receipt(entry);
      this.d.index.add(entry);
      o.handles.forEach((h) => h.ack());
      this.counts.receipted++;
      this.d.log.debug(tag, 'object receipted');
    } catch (err) {
      this.counts.failed++;
      this.d.log.error({ ...tag, err }, 'storing object off site failed; will retry');
      o.handles.forEach((h) => h.nak(5000));
    }
  }

  /** Steps 4-5: returns the off-site entry once a verified copy is in MV_OFFSITE. */
  private async store(o: CompleteObject<WorkMessage>): Promise<OffsiteEntry> {
    const subject = subjects.offsite(o.site, o.repo, o.kind, o.hash);
    const entry = { site: o.site, repo: o.repo, kind: o.kind, hash: o.hash, size: o.size, storedAt: this.d.clock() };
    let suffix = '';
    if ((await this.d.bus.countSubject(streams.offsite.name, subject)) > 0) {
      const problem = await this.verifyCopy(subject, o);
      if (problem === undefined) {
        this.counts.duplicates++;
        return entry;
      }
      this.d.log.warn({ ...entry, problem }, 'unreceipted off-site copy is bad: purged, storing again');
      await this.d.bus.purgeSubject(streams.offsite.name, subject);
      suffix = `.${entry.storedAt}`; // new message ids: the old ones may still be in the duplicate window
    }
    const headers = objectParts({ site: o.site, repo: o.repo, kind: o.kind, hash: o.hash, size: o.size }, o.partSize);
    const key = objectKey(o);
    await Promise.all(
      o.parts.map((data, i) =>
        this.d.bus.publish(subject, data, { msgId: `${key}.${i}${suffix}`, headers: { [OBJECT_HEADER]: encodePartHeader(headers[i]!) } }),
      ),
    );
    const problem = await this.verifyCopy(subject, o);
    if (problem !== undefined) {
      throw new MedvaultError(codes.DATA_CORRUPT, `off-site copy of ${o.kind} ${o.hash} failed read-back: ${problem}`, { retryable: true });
    }
    this.counts.stored++;
    return entry;
  }

  /** Reads the off-site copy back; undefined when it is complete and its SHA-256 is right, else why not. */
  private async verifyCopy(subject: string, id: ObjectId & { size: number; partSize: number; parts: Uint8Array[] }): Promise<string | undefined> {
    const n = id.parts.length;
    const msgs = await this.d.bus.readSubject(streams.offsite.name, subject, 4 * n + 8);
    const got: Array<Uint8Array | undefined> = new Array(n);
    for (const m of msgs) {
      try {
        const p = decodePart(m.header(OBJECT_HEADER), m.data.byteLength);
        if (p.hash !== id.hash || p.size !== id.size || p.parts !== n) return `part ${p.part} describes another object`;
        got[p.part] ??= m.data;
      } catch (err) {
        return (err as Error).message;
      }
    }
    let missing = 0;
    for (let i = 0; i < n; i++) if (got[i] === undefined) missing++;
    if (missing > 0) return `${missing} of ${n} parts missing`;
    const actual = sha256Hex(...(got as Uint8Array[]));
    return actual === id.hash ? undefined : `SHA-256 ${actual}`;
  }

  private async receipt(e: OffsiteEntry): Promise<void> {
    const r = signMessage<Receipt>({ type: 'mv.receipt.v1', ...e }, this.d.key);
    await this.d.bus.publish(subjects.control(e.site, 'receipt'), encode(r));
  }
}
