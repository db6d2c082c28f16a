/**
 * Replicator: the durable outbox. The outbox is not a separate queue but a difference: every object
 * in the repository that has no receipt yet. Both sides of it are durable (the repository on disk,
 * the receipt book), so replication resumes after any crash or outage without losing or repeating
 * what already arrived.
 *
 * drain():
 *  1. list the repository kind by kind in write order: config, key, pack, index, snapshot;
 *  2. skip objects with a receipt, and objects sent less than `resendAfterMs` ago (their receipt
 *     may still be on its way);
 *  3. ask the server what it holds before sending an object again (an earlier publish failed or
 *     timed out, or no receipt came) and before a first send of a large object (an agent restarted
 *     mid-transfer): a headers-only read of its exact subject in MV_OFFSITE (`Link.read`). The
 *     off-site copy is written in part order, so it is parts 0…k-1:
 *     - all parts there: do not send; wait one more `resendAfterMs` for the receipt (the controller
 *       holds the last inbox part until it has receipted, so a receipt comes even after a
 *       controller crash). "Asking" for a receipt that still does not come means publishing the
 *       last part once more under a new message id (`…<part>.ask<time>`): the controller finds
 *       the copy complete, reads it back, verifies it and receipts it (or acks it if it had);
 *     - parts 0…k-1 there: send parts k… only (a stalled many-GiB transfer resumes, not restarts);
 *  4. read the object in part-sized ranges, never whole, hashing as it goes, and publish its parts
 *     to mv.v1.in.<site>.<repo>.<kind>.<hash> with message id <site>.<repo>.<kind>.<hash>.<part>
 *     (plus a suffix for a resend the controller asked for), at most `maxInFlightBytes`
 *     unacknowledged. An object whose bytes no longer hash to its name is reported (after the
 *     other objects went) as MV_ERR_DATA_CORRUPT naming it, and not sent again by this process;
 *  5. a failed or timed-out publish aborts the drain (MV_ERR_TRANSPORT_FAILED; the link's ack
 *     timeout means a stalled server fails the drain, never hangs it); the next drain asks first.
 */
import { createHash } from 'node:crypto';
import {
  MedvaultError,
  codes,
  decodePart,
  encodePartHeader,
  objectKinds,
  objectParts,
  streams,
  subjects,
  OBJECT_HEADER,
  PART_SIZE,
  type ObjectKind,
  type ObjectPart,
} from '@medvault/protocol';
import { MSG_SIZE_HEADER, type Link } from './link.js';
import type { ReceiptBook } from './receipts.js';

/** What the replicator needs of a repository. */
export interface ReplicaSource {
  readonly id: string;
  listObjects(kind: ObjectKind): AsyncIterable<{ hash: string; size: number }>;
  /** Bytes `offset` … `offset + length` of an object (fewer at its end); MV_ERR_NOT_FOUND when it is gone. */
  readRange(kind: ObjectKind, hash: string, offset: number, length: number): Promise<Uint8Array>;
}

export interface Backlog {
  objects: number;
  bytes: number;
  oldestAt?: number;
}

interface Attempt {
  /** When it was last sent. */
  at: number;
  /** A publish of it failed or timed out: ask the server before sending it again. */
  failed?: boolean;
  /** When it was first sent, for the backlog's age. */
  firstAt: number;
  /** Set once a complete off-site copy was seen without a receipt. */
  waitedAt?: number;
}

export class Replicator {
  private readonly attempts = new Map<string, Attempt>();
  private readonly corrupt = new Set<string>();
  private readonly forced = new Map<string, string>();
  private last: Backlog = { objects: 0, bytes: 0 };
  private running: Promise<{ sent: number; bytes: number }> | undefined;

  constructor(
    private readonly deps: {
      site: string;
      source: ReplicaSource;
      link: Pick<Link, 'publish' | 'read'>;
      book: Pick<ReceiptBook, 'has'>;
      now: () => number;
      maxInFlightBytes?: number;
      resendAfterMs?: number;
      partSize?: number;
      /** Objects of more parts than this are looked up off site before their first send. */
      probeAboveParts?: number;
    },
  ) {}

  /** Objects and bytes without a receipt, as of the last drain. */
  get backlog(): Backlog {
    return this.last;
  }

  /**
   * Sends `objects` again at the next drain, receipt or not, with message ids suffixed `suffix`
   * (a resend the controller asked for: the suffix keeps JetStream's duplicate window from
   * swallowing it).
   */
  resend(objects: Iterable<{ kind: ObjectKind; hash: string }>, suffix: string): void {
    for (const o of objects) this.forced.set(`${o.kind}/${o.hash}`, suffix);
  }

  /** One drain at a time: a call while one runs waits for that one and returns its result. */
  drain(): Promise<{ sent: number; bytes: number }> {
    this.running ??= this.drainOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async drainOnce(): Promise<{ sent: number; bytes: number }> {
    const { site, source, link, book, now } = this.deps;
    const maxInFlight = this.deps.maxInFlightBytes ?? 16 * 1024 * 1024;
    const resendAfter = this.deps.resendAfterMs ?? 60_000;
    const partSize = this.deps.partSize ?? PART_SIZE;
    const inFlight: { done: Promise<void>; bytes: number }[] = [];
    let inFlightBytes = 0;
    let sent = 0;
    let sentBytes = 0;
    const corruptNow: string[] = [];
    const published: string[] = [];
    const backlog: Backlog = { objects: 0, bytes: 0 };
    const settleOldest = async () => {
      const first = inFlight.shift()!;
      inFlightBytes -= first.bytes;
      await first.done;
    };
    const publish = async (subject: string, payload: Uint8Array, part: ObjectPart, msgID: string) => {
      while (inFlight.length > 0 && inFlightBytes + payload.byteLength > maxInFlight) await settleOldest();
      const done = link.publish(subject, payload, { msgID, headers: { [OBJECT_HEADER]: encodePartHeader(part) } });
      done.catch(() => {}); // observed by settleOldest
      inFlight.push({ done, bytes: payload.byteLength });
      inFlightBytes += payload.byteLength;
    };
    try {
      for (const kind of objectKinds) {
        for await (const { hash, size } of source.listObjects(kind)) {
          const key = `${kind}/${hash}`;
          const suffix = this.forced.get(key);
          if (suffix === undefined && book.has(source.id, kind, hash)) continue;
          const attempt = this.attempts.get(key);
          backlog.objects++;
          backlog.bytes += size;
          if (attempt) backlog.oldestAt = Math.min(backlog.oldestAt ?? attempt.firstAt, attempt.firstAt);
          if (this.corrupt.has(key) && suffix === undefined) continue;
          if (suffix === undefined && attempt && !attempt.failed && now() - attempt.at < resendAfter) continue;
          const parts = objectParts({ site, repo: source.id, kind, hash, size }, partSize);
          const subject = subjects.inbox(site, source.id, kind, hash);
          const base = `${site}.${source.id}.${kind}.${hash}`;
          let from = 0;
          if (suffix === undefined && (attempt || parts.length > (this.deps.probeAboveParts ?? 4))) {
            from = await this.heldOffsite(kind, hash, size, partSize);
            if (from === parts.length) {
              const t = now();
              const a: Attempt = { at: t, firstAt: attempt?.firstAt ?? t, waitedAt: attempt?.waitedAt ?? t };
              this.attempts.set(key, a);
              if (a.waitedAt === t) continue; // complete off site: its receipt is on its way
              const lastPart = parts[parts.length - 1]!;
              const payload = await this.readPart(kind, hash, lastPart);
              await publish(subject, payload, lastPart, `${base}.${lastPart.part}.ask${t}`);
              continue;
            }
          }
          // Until the drain's publishes are all acked, a publish of it may have failed.
          const t0 = now();
          this.attempts.set(key, { at: t0, firstAt: attempt?.firstAt ?? t0, failed: true });
          published.push(key);
          // Read every part (to hash the whole), publish those from `from` on.
          const sha = createHash('sha256');
          let unreadable = false;
          for (const part of parts) {
            let payload: Uint8Array;
            try {
              payload = await this.readPart(kind, hash, part);
            } catch (err) {
              const code = (err as MedvaultError).code;
              if (code !== codes.DATA_CORRUPT && code !== codes.NOT_FOUND) throw err;
              unreadable = code === codes.DATA_CORRUPT; // gone: pruned since the listing
              break;
            }
            sha.update(payload);
            if (part.part >= from) await publish(subject, payload, part, `${base}.${part.part}${suffix ?? ''}`);
          }
          this.forced.delete(key);
          if (unreadable || sha.digest('hex') !== hash) {
            this.corrupt.add(key);
            corruptNow.push(key);
            continue;
          }
          sent++;
          sentBytes += size;
        }
      }
      while (inFlight.length > 0) await settleOldest();
      for (const key of published) delete this.attempts.get(key)!.failed;
    } catch (err) {
      // Whatever was in flight may or may not have arrived: the next drain asks the server first.
      await Promise.allSettled(inFlight.map((f) => f.done));
      throw err;
    }
    this.last = backlog;
    if (corruptNow.length > 0) {
      throw new MedvaultError(codes.DATA_CORRUPT, `repository ${source.id}: ${corruptNow.join(', ')}: bytes no longer match the hash in the name; not replicated (run check --read-data)`);
    }
    return { sent, bytes: sentBytes };
  }

  /** One part's bytes, read as a range of the object; MV_ERR_DATA_CORRUPT when the object is shorter. */
  private async readPart(kind: ObjectKind, hash: string, part: ObjectPart): Promise<Uint8Array> {
    const offset = part.part * part.partSize;
    const length = Math.min(part.partSize, part.size - offset);
    const b = await this.deps.source.readRange(kind, hash, offset, length);
    if (b.byteLength !== length) {
      throw new MedvaultError(codes.DATA_CORRUPT, `repository ${this.deps.source.id}: ${kind} ${hash} ends at ${offset + b.byteLength} bytes, listed as ${part.size}`);
    }
    return b;
  }

  /** How many parts from part 0 on MV_OFFSITE holds of an object (all of them: a complete copy). */
  private async heldOffsite(kind: ObjectKind, hash: string, size: number, partSize: number): Promise<number> {
    const { site, source, link } = this.deps;
    const held = new Set<number>();
    for await (const m of link.read(streams.offsite.name, subjects.offsite(site, source.id, kind, hash), { headersOnly: true })) {
      try {
        const p = decodePart(m.header(OBJECT_HEADER), Number(m.header(MSG_SIZE_HEADER) ?? m.data.byteLength));
        if (p.hash === hash && p.size === size && p.partSize === partSize) held.add(p.part);
      } catch {
        // Not a part of this object: the controller purges such copies; send ours.
      }
    }
    let k = 0;
    while (held.has(k)) k++;
    return k;
  }
}
