/**
 * Catch-up estimate for the heartbeat: the bytes of every object without a receipt (the outbox,
 * listed as the replicator lists it), the measured replication rate and the time to catch up at
 * that rate. The listing is redone at most every `rescanMs`; in between, bytes acknowledged since
 * are taken off, so a heartbeat costs no directory walk.
 */
import { objectKinds } from '@medvault/protocol';
import type { ReplicaSource } from './replicator.js';
import type { ReceiptBook } from './receipts.js';

export interface CatchUp {
  /** Bytes of objects without a receipt. */
  toSendBytes: number;
  /** Object bytes acknowledged per second over the last minute. */
  rateBps: number;
  /** Seconds to catch up at that rate; absent while nothing moves or nothing is left. */
  etaS?: number;
  /** The bandwidth limit in force now (bytes per second); absent when unlimited. */
  limitBps?: number;
}

/** Bytes of `source`'s objects that `book` holds no receipt for. */
export async function outboxBytes(source: Pick<ReplicaSource, 'id' | 'listObjects'>, book: Pick<ReceiptBook, 'has'>): Promise<number> {
  let bytes = 0;
  for (const kind of objectKinds) for await (const o of source.listObjects(kind)) if (!book.has(source.id, kind, o.hash)) bytes += o.size;
  return bytes;
}

/** Seconds to send `bytes` at `rate` bytes per second; undefined when nothing is left or nothing moves. */
export function etaSeconds(bytes: number, rate: number): number | undefined {
  return bytes > 0 && rate > 0 ? Math.ceil(bytes / rate) : undefined;
}

export function catchUpEstimator(deps: {
  source: Pick<ReplicaSource, 'id' | 'listObjects'>;
  book: Pick<ReceiptBook, 'has'>;
  link: { meter: { rate: number; total: number }; limitNow(): number | undefined };
  now?: () => number;
  rescanMs?: number;
}): () => Promise<CatchUp> {
  const now = deps.now ?? Date.now;
  let scan: { at: number; bytes: number; sentBefore: number } | undefined;
  return async () => {
    const { meter } = deps.link;
    if (!scan || now() - scan.at >= (deps.rescanMs ?? 30_000)) scan = { at: now(), sentBefore: meter.total, bytes: await outboxBytes(deps.source, deps.book) };
    const toSendBytes = Math.max(0, scan.bytes - (meter.total - scan.sentBefore));
    const rateBps = Math.round(meter.rate);
    const etaS = etaSeconds(toSendBytes, rateBps);
    const limitBps = deps.link.limitNow();
    return { toSendBytes, rateBps, ...(etaS !== undefined ? { etaS } : {}), ...(limitBps !== undefined ? { limitBps } : {}) };
  };
}
