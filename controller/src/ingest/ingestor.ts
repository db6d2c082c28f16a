/**
 * ingest/: turns what agents replicate (MV_INBOX) into verified, immutable off-site copies
 * (MV_OFFSITE) and signed receipts (MV_CONTROL), streamed: an object of any size, 0 bytes to many
 * GiB, costs the memory of one part.
 *
 * Agents publish an object's parts in order; redeliveries may come in any order. For each part:
 *  1. check it (Assembler: subject = header, size cap); garbage is terminated and logged;
 *  2. the first part of an object that this process sees opens it: already receipted with its copy
 *     complete → ack, a duplicate (no second receipt: the first one is in MV_CONTROL); a copy in
 *     MV_OFFSITE without a receipt (stored before a crash) is read back: parts 0…k-1 in order resume
 *     the object at k with their hash; all of them hashing right → receipt; anything else (gaps,
 *     strangers, a wrong hash, or a receipted copy gone) is purged and stored again under new ids;
 *  3. a part before `next` is stored already: ack (nak while its publish is still in flight); one
 *     after it: nak, it comes again after `next`;
 *  4. part `next` is published to MV_OFFSITE (message id `<key>.<part><suffix>`, so a retried
 *     publish is a no-op) and hashed. Publishes are pipelined: several parts, of one object and of
 *     the objects after it, are in flight at once (at most IN_FLIGHT_BYTES of them held), issued in
 *     part order on the one connection, so the server stores them in order. A part's inbox message
 *     is acked once it and every part before it are stored — except the last part's;
 *  5. after the last part: SHA-256 of the whole MUST equal the name, else the copy is purged, the
 *     part terminated, no receipt. Then the copy is read back streamed and hashed again, a signed
 *     mv.receipt.v1 is published (message id `<key>.receipt<suffix>`), and only then is the last
 *     part acked (kept alive with working() meanwhile).
 *
 * Why acking parts before the receipt is safe: a part is acked only once its bytes are in
 * MV_OFFSITE (same servers, storage and replicas as MV_INBOX), so a crash at any point loses
 * nothing; the rest of the parts resume the partial copy. The last part stays unacked until the
 * receipt is out, so a crash before it redelivers that part and step 2 finishes the object; a
 * receipt follows only a full read-back that hashes to the name. Since only one part per object is
 * held, an object of thousands of parts never meets the consumer's max_ack_pending or ack_wait.
 * A transport failure naks the part and pauses intake for a few seconds, so a stalled server is
 * not hammered; a part whose object is being finished is nak'ed briefly.
 *
 * A failed publish mid-object (rare: a server stall or reconnect) fails that part and every part
 * of the object in flight after it; none of them is acked. Some later ones may still have been
 * stored, out of place. Fallback: resume from the first gap. Once the object's publishes have all
 * settled, its next part reopens it (step 2), which finds parts 0…k-1 in order and then strays.
 * MV_OFFSITE denies deleting single messages, and parts 0…k-1 are acked (gone from MV_INBOX), so
 * they are copied, streamed, to the end of the subject under new message ids, everything before
 * the copy is purged, and storing goes on from part k under those new ids (the old ones stay in
 * the duplicate window). A crash midway leaves the old prefix whole: the next open does it again.
 * So MV_OFFSITE holds exactly `parts` messages per object, in order, and no acked part is lost.
 */
import { createHash } from 'node:crypto';
import {
  MedvaultError,
  OBJECT_HEADER,
  codes,
  decodePart,
  encode,
  encodePartHeader,
  signMessage,
  streams,
  subjects,
  type ObjectPart,
  type Receipt,
  type SigningKey,
} from '@medvault/protocol';
import type { Bus, WorkMessage } from '../bus.js';
import type { Log } from '../log.js';
import { Assembler, objectKey, type Assembly, type AssemblyLimits, type ObjectId } from './assembler.js';
import type { OffsiteEntry, OffsiteIndex } from './offsite-index.js';

export const INGEST_DURABLE = 'mv-controller-ingest';

export interface IngestorDeps {
  bus: Pick<Bus, 'publish' | 'work' | 'countSubject' | 'scanSubject' | 'purgeSubject'>;
  index: OffsiteIndex;
  key: SigningKey;
  clock: () => number;
  log: Log;
  limits?: Partial<AssemblyLimits>;
  /** Objects verified and receipted concurrently. */
  concurrency?: number;
}

export interface IngestStats {
  stored: number;
  receipted: number;
  duplicates: number;
  refused: number;
  failed: number;
  /** Objects in progress, the bytes of theirs stored but not yet verified, and part bytes held in memory. */
  inProgress: { objects: number; bytes: number; heldBytes: number };
}

export const defaultLimits: AssemblyLimits = {
  maxObjectBytes: 64 * 1024 ** 3,
  maxObjects: 256,
  timeoutMs: 60_000,
};

/** Pause after a transport failure before taking parts again. */
const BACKOFF_MS = 3000;
/** Part bytes held while their publishes are in flight; well under the server's 64 MiB max_pending. */
const IN_FLIGHT_BYTES = 16 * 1024 * 1024;

export class Ingestor {
  private readonly assembler: Assembler;
  private readonly finishing = new Map<string, Promise<void>>();
  /** Objects whose pipeline failed, until their publishes in flight have settled. */
  private readonly settling = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Objects being read back and receipted (at most `concurrency`). */
  private readonly verifying = new Set<Promise<void>>();
  private readonly failedPipes = new WeakSet<Assembly>();
  private readonly refusedAt = new Map<string, number>();
  private readonly counts = { stored: 0, receipted: 0, duplicates: 0, refused: 0, failed: 0 };
  private heldBytes = 0;
  private pausedUntil = 0;
  private work: Awaited<ReturnType<Bus['work']>> | undefined;
  private loop: Promise<void> | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly limits: AssemblyLimits;

  constructor(private readonly d: IngestorDeps) {
    this.limits = { ...defaultLimits, ...d.limits };
    this.assembler = new Assembler(this.limits);
  }

  /** True while the inbox consumer runs (started and not ended); the systemd watchdog checks it. */
  get consuming(): boolean {
    return this.loop !== undefined && !this.ended;
  }

  stats(): IngestStats {
    return { ...this.counts, inProgress: { ...this.assembler.inProgress, heldBytes: this.heldBytes } };
  }

  private get ackWaitMs(): number {
    return 2 * this.limits.timeoutMs;
  }

  /** Starts consuming MV_INBOX. Call after the OffsiteIndex has caught up with MV_CONTROL. */
  async start(): Promise<void> {
    this.work = await this.d.bus.work(streams.inbox.name, INGEST_DURABLE, { maxMessages: 16, ackWaitMs: this.ackWaitMs });
    const work = this.work;
    this.timer = setInterval(() => this.expire(), Math.max(1000, this.limits.timeoutMs / 4));
    this.timer.unref();
    this.loop = (async () => {
      for await (const m of work) {
        const n = m.data.byteLength;
        this.heldBytes += n;
        const storing = (await this.take(m).catch((err) => ((this.heldBytes -= n), Promise.reject(err)))) as Promise<void> | undefined;
        if (!storing) this.heldBytes -= n;
        else {
          const p: Promise<void> = storing.finally(() => ((this.heldBytes -= n), this.inFlight.delete(p)));
          this.inFlight.add(p);
        }
        while (this.heldBytes >= IN_FLIGHT_BYTES && this.inFlight.size > 0) await Promise.race(this.inFlight);
      }
    })()
      .catch((err) => this.d.log.error({ err }, 'ingest stopped'))
      .finally(() => (this.ended = true));
  }

  /** Stops taking messages and waits for objects being finished. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.work?.stop();
    await this.loop;
    await Promise.allSettled([...this.inFlight, ...this.finishing.values()]);
  }

  /** Handles one part; resolves with the part's storing when its publish is in flight (never rejects). */
  private async take(m: WorkMessage): Promise<Promise<void> | void> {
    const v = this.assembler.check(m.subject, m.header(OBJECT_HEADER), m.data.byteLength);
    if (v.kind === 'invalid') {
      this.counts.refused++;
      this.d.log.warn({ subject: m.subject, ...v.id, reason: v.reason }, 'invalid object part refused');
      return m.term();
    }
    if (v.kind === 'too-large') {
      m.term();
      if (!this.firstRefusal(objectKey(v.id))) return;
      this.counts.refused++;
      this.d.log.error(
        { ...v.id, size: v.size, maxObjectBytes: this.limits.maxObjectBytes },
        'object larger than ingest.max_object_bytes refused: no receipt until the limit is raised',
      );
      return;
    }
    const { id, key, part } = v;
    if (Date.now() < this.pausedUntil || this.finishing.has(key) || this.settling.has(key)) return m.nak(1000);
    try {
      let a = this.assembler.get(key);
      if (!a) {
        if (this.assembler.full) return m.nak(1000);
        const opened = await this.open(key, id, part);
        if (opened === 'done') return m.ack();
        a = opened;
      }
      if (part.part < a.stored) {
        this.counts.duplicates++;
        return m.ack();
      }
      if (part.part < a.next) return m.nak(500);
      if (part.part > a.next) return m.nak(500);
      const pub = this.d.bus.publish(subjects.offsite(id.site, id.repo, id.kind, id.hash), m.data, {
        msgId: `${key}.${part.part}${a.suffix}`,
        headers: { [OBJECT_HEADER]: encodePartHeader(part) },
      });
      const prev = a.tail;
      // Settles once this publish and every one before it have, so a failure is seen in part order.
      a.tail = Promise.allSettled([prev, pub]).then(([before, mine]) => {
        if (before.status === 'rejected') throw before.reason;
        if (mine.status === 'rejected') throw mine.reason;
        a.stored = part.part + 1;
      });
      const last = this.assembler.advance(a, m.data, this.d.clock());
      const storing = a.tail.then(
        () => void (last || m.ack()),
        (err) => {
          this.pipelineFailed(key, a, part.part, err);
          if (!last) m.nak(BACKOFF_MS);
        },
      );
      if (last) {
        this.assembler.drop(key);
        this.startFinish(key, a, m);
      }
      return storing;
    } catch (err) {
      this.counts.failed++;
      this.assembler.drop(key); // reopened from what MV_OFFSITE holds
      this.pausedUntil = Date.now() + BACKOFF_MS;
      this.d.log.error({ ...id, part: part.part, err }, 'storing object off site failed; will retry');
      m.nak(BACKOFF_MS);
    }
  }

  /**
   * Step 2 for an object this process has not seen yet: 'done' when nothing is left to do for
   * `m`, else the assembly to continue (from what MV_OFFSITE holds).
   */
  private async open(key: string, id: ObjectId, p: ObjectPart): Promise<Assembly | 'done'> {
    const subject = subjects.offsite(id.site, id.repo, id.kind, id.hash);
    const now = this.d.clock();
    const count = await this.d.bus.countSubject(streams.offsite.name, subject);
    if (this.d.index.get(id) && count === p.parts) {
      this.counts.duplicates++;
      return 'done';
    }
    if (count > 0) {
      const copy = await this.readCopy(subject, key, p);
      if (copy.problem === undefined && !this.d.index.get(id)) {
        const suffix = copy.strays.length > 0 ? await this.dropStrays(subject, key, copy.next, `.${now}`) : copy.suffix;
        const a = this.assembler.begin(key, id, p, now, { ...copy, suffix });
        if (copy.next < p.parts) return a;
        // Complete and read back whole: it only needs its receipt.
        this.assembler.drop(key);
        await this.finish(a, true);
        return 'done';
      }
      this.d.log.warn({ ...id, problem: copy.problem ?? 'receipted copy incomplete' }, 'off-site copy is bad or incomplete: purged, storing again');
      await this.d.bus.purgeSubject(streams.offsite.name, subject);
    }
    // New message ids after a purge: the old ones may still be in the duplicate window.
    return this.assembler.begin(key, id, p, now, { next: 0, bytes: 0, hash: createHash('sha256'), suffix: count > 0 || this.d.index.get(id) || this.d.index.wasRemoved(id) ? `.${now}` : '' });
  }

  /**
   * Reads the off-site copy back, streamed: how many parts from 0 on are there in order, their
   * bytes and running hash, the message id suffix the last of them was stored with, the sequences
   * of the messages after the first one out of place (`strays`), or what is wrong with it.
   */
  private async readCopy(subject: string, key: string, p: ObjectPart) {
    const out = { next: 0, bytes: 0, hash: createHash('sha256'), suffix: '', strays: [] as number[], problem: undefined as string | undefined };
    for await (const m of this.d.bus.scanSubject(streams.offsite.name, subject)) {
      if (out.strays.length > 0) {
        out.strays.push(m.seq);
        continue;
      }
      let h: ObjectPart;
      try {
        h = decodePart(m.header(OBJECT_HEADER), m.data.byteLength);
      } catch (err) {
        out.problem = (err as Error).message;
        break;
      }
      if (h.hash !== p.hash || h.size !== p.size || h.partSize !== p.partSize) {
        out.problem = `part ${h.part} describes another object`;
        break;
      }
      if (h.part !== out.next) {
        out.strays.push(m.seq);
        continue;
      }
      out.suffix = (m.header('Nats-Msg-Id') ?? `${key}.${h.part}.${this.d.clock()}`).slice(`${key}.${h.part}`.length);
      out.hash.update(m.data);
      out.next++;
      out.bytes += m.data.byteLength;
    }
    if (out.problem === undefined && out.next === p.parts && out.hash.copy().digest('hex') !== p.hash) out.problem = 'SHA-256 of the copy does not match its name';
    return out;
  }

  /**
   * Resume from the first gap: copies the `next` parts in order at the start of the subject to its
   * end under message ids with `suffix`, then purges everything before the copy; returns `suffix`.
   */
  private async dropStrays(subject: string, key: string, next: number, suffix: string): Promise<string> {
    this.d.log.warn({ subject, parts: next }, 'off-site copy has parts out of place after a failed store: keeping the parts in order, storing again from the first gap');
    let first: number | undefined;
    let part = 0;
    if (next > 0) {
      for await (const m of this.d.bus.scanSubject(streams.offsite.name, subject)) {
        const ack = await this.d.bus.publish(subject, m.data, { msgId: `${key}.${part}${suffix}`, headers: { [OBJECT_HEADER]: m.header(OBJECT_HEADER)! } });
        first ??= ack.seq;
        if (++part === next) break;
      }
    }
    await this.d.bus.purgeSubject(streams.offsite.name, subject, first);
    return suffix;
  }

  /** Step 5 in the background, holding the last part `m` until the receipt is out. */
  private startFinish(key: string, a: Assembly, m: WorkMessage): void {
    const keepAlive = setInterval(() => m.working(), this.ackWaitMs / 4);
    const run = async () => {
      try {
        try {
          await a.tail;
        } catch {
          return m.nak(BACKOFF_MS); // pipelineFailed logged it; the part reopens the object
        }
        this.counts.stored++;
        // A slot among the objects being read back: only those count, not the ones waiting.
        while (this.verifying.size >= (this.d.concurrency ?? 4)) await Promise.race(this.verifying);
        this.verifying.add(p);
        if (a.hash.copy().digest('hex') !== a.id.hash) {
          this.counts.refused++;
          this.d.log.warn({ ...a.id, size: a.header.size }, 'object hash mismatch: refused, no receipt');
          await this.d.bus.purgeSubject(streams.offsite.name, subjects.offsite(a.id.site, a.id.repo, a.id.kind, a.id.hash));
          return m.term();
        }
        await this.finish(a, false);
        m.ack();
      } catch (err) {
        this.counts.failed++;
        const corrupt = (err as MedvaultError).code === codes.DATA_CORRUPT;
        this.d.log.error({ ...a.id, err }, corrupt ? 'off-site copy failed read-back: purged, the agent sends it again' : 'finishing object off site failed; will retry');
        if (corrupt) m.term();
        else m.nak(BACKOFF_MS);
      } finally {
        clearInterval(keepAlive);
      }
    };
    const p: Promise<void> = run().finally(() => (this.finishing.delete(key), this.verifying.delete(p)));
    this.finishing.set(key, p);
  }

  /** Reads the copy back (unless `verified`: it just was) and receipts it. */
  private async finish(a: Assembly, verified: boolean): Promise<void> {
    const { site, repo, kind, hash } = a.id;
    const subject = subjects.offsite(site, repo, kind, hash);
    if (!verified) {
      const copy = await this.readCopy(subject, objectKey(a.id), a.header);
      const problem = copy.problem ?? (copy.next < a.header.parts ? `${a.header.parts - copy.next} of ${a.header.parts} parts missing` : copy.strays.length > 0 ? `${copy.strays.length} messages out of place` : undefined);
      if (problem !== undefined) {
        await this.d.bus.purgeSubject(streams.offsite.name, subject);
        throw new MedvaultError(codes.DATA_CORRUPT, `off-site copy of ${kind} ${hash} failed read-back: ${problem}`);
      }
    }
    const entry: OffsiteEntry = { site, repo, kind, hash, size: a.header.size, storedAt: this.d.clock() };
    const r = signMessage<Receipt>({ type: 'mv.receipt.v1', ...entry }, this.d.key);
    // The OffsiteIndex learns of it from MV_CONTROL itself, so a receipt the server lost (killed
    // before it wrote it) is not taken as given: the agent's next ask gets it issued again.
    await this.d.bus.publish(subjects.control(site, 'receipt'), encode(r), { msgId: `${objectKey(a.id)}.receipt${a.suffix}` });
    this.counts.receipted++;
    this.d.log.debug({ ...a.id, size: a.header.size }, 'object receipted');
  }

  /**
   * A publish of `a` failed: drop the assembly, pause intake, and keep the object's parts nak'ed
   * until all of its publishes in flight have settled; its next part then reopens it (step 2).
   */
  private pipelineFailed(key: string, a: Assembly, part: number, err: unknown): void {
    if (this.failedPipes.has(a)) return; // reported already
    this.failedPipes.add(a);
    this.counts.failed++;
    if (this.assembler.get(key) === a) this.assembler.drop(key);
    this.pausedUntil = Date.now() + BACKOFF_MS;
    this.d.log.error({ ...a.id, part, err }, 'storing object off site failed; will resume from the first part missing');
    const settled = a.tail.then(() => {}, () => {}).finally(() => this.settling.delete(key));
    this.settling.set(key, settled);
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
    for (const a of this.assembler.expire(this.d.clock())) {
      this.d.log.warn({ ...a.id, received: a.next, parts: a.header.parts }, 'incomplete object set aside: parts stopped arriving (its stored parts stay off site)');
    }
  }
}
