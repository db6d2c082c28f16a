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
 *  3. read each object (its hash is verified by the repository), publish its parts to
 *     mv.v1.in.<site>.<repo>.<kind>.<hash> with message id <site>.<repo>.<kind>.<hash>.<part>,
 *     keeping at most `maxInFlightBytes` unacknowledged;
 *  4. a failed publish aborts the drain (MV_ERR_TRANSPORT_FAILED); the next drain resends.
 */
import { objectKinds, objectParts, encodePartHeader, subjects, OBJECT_HEADER, PART_SIZE, type ObjectKind } from '@medvault/protocol';
import type { Link } from './link.js';
import type { ReceiptBook } from './receipts.js';

/** What the replicator needs of a repository. */
export interface ReplicaSource {
  readonly id: string;
  listObjects(kind: ObjectKind): AsyncIterable<{ hash: string; size: number }>;
  readObject(kind: ObjectKind, hash: string): Promise<Uint8Array>;
}

export interface Backlog {
  objects: number;
  bytes: number;
  oldestAt?: number;
}

export class Replicator {
  private readonly sentAt = new Map<string, number>();
  private last: Backlog = { objects: 0, bytes: 0 };
  private running: Promise<{ sent: number; bytes: number }> | undefined;

  constructor(
    private readonly deps: {
      site: string;
      source: ReplicaSource;
      link: Pick<Link, 'publish'>;
      book: Pick<ReceiptBook, 'has'>;
      now: () => number;
      maxInFlightBytes?: number;
      resendAfterMs?: number;
      partSize?: number;
    },
  ) {}

  /** Objects and bytes without a receipt, as of the last drain. */
  get backlog(): Backlog {
    return this.last;
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
    const inFlight: { done: Promise<void>; bytes: number }[] = [];
    let inFlightBytes = 0;
    let sent = 0;
    let sentBytes = 0;
    const backlog: Backlog = { objects: 0, bytes: 0 };
    const settleOldest = async () => {
      const first = inFlight.shift()!;
      inFlightBytes -= first.bytes;
      await first.done;
    };
    try {
      for (const kind of objectKinds) {
        for await (const { hash, size } of source.listObjects(kind)) {
          if (book.has(source.id, kind, hash)) continue;
          const key = `${kind}/${hash}`;
          const firstSent = this.sentAt.get(key);
          backlog.objects++;
          backlog.bytes += size;
          if (firstSent !== undefined) backlog.oldestAt = Math.min(backlog.oldestAt ?? firstSent, firstSent);
          if (firstSent !== undefined && now() - firstSent < resendAfter) continue;
          const bytes = await source.readObject(kind, hash);
          for (const part of objectParts({ site, repo: source.id, kind, hash, size: bytes.byteLength }, this.deps.partSize ?? PART_SIZE)) {
            const payload = bytes.subarray(part.part * part.partSize, (part.part + 1) * part.partSize);
            while (inFlight.length > 0 && inFlightBytes + payload.byteLength > maxInFlight) await settleOldest();
            const done = link.publish(subjects.inbox(site, source.id, kind, hash), payload, {
              msgID: `${site}.${source.id}.${kind}.${hash}.${part.part}`,
              headers: { [OBJECT_HEADER]: encodePartHeader(part) },
            });
            done.catch(() => {}); // observed by settleOldest
            inFlight.push({ done, bytes: payload.byteLength });
            inFlightBytes += payload.byteLength;
          }
          this.sentAt.set(key, now());
          sent++;
          sentBytes += bytes.byteLength;
        }
      }
      while (inFlight.length > 0) await settleOldest();
    } catch (err) {
      // Whatever was in flight may or may not have arrived: forget it so the next drain resends.
      this.sentAt.clear();
      await Promise.allSettled(inFlight.map((f) => f.done));
      throw err;
    }
    this.last = backlog;
    return { sent, bytes: sentBytes };
  }
}
