/**
 * The slice of NATS JetStream the controller uses, as plain interfaces. `nats.ts` is the only
 * implementation and the only file that imports the NATS client; everything else takes a
 * `Pick<Bus, ...>` of what it needs, so it can be tested against a real server or a twin.
 */

/** Stream holding every site's replicated audit chain, sourced by the server from MV_EVENTS (controller only). */
export const SITE_AUDIT_STREAM = 'MV_SITE_AUDIT';

/** A message as stored in a stream. */
export interface StoredMessage {
  readonly subject: string;
  /** Stream sequence. */
  readonly seq: number;
  readonly data: Uint8Array;
  /** Milliseconds since the epoch at which the stream stored it. */
  readonly time: number;
  header(name: string): string | undefined;
}

/** A message from a durable work consumer: it MUST be acked, nak'ed or terminated. */
export interface WorkMessage extends StoredMessage {
  readonly redelivered: boolean;
  ack(): void;
  /** Ask for redelivery after `delayMs`. */
  nak(delayMs?: number): void;
  /** Never redeliver (work queue: the message is gone). */
  term(): void;
  /** Still being worked on: restarts the ack timeout. */
  working(): void;
}

export interface PublishOptions {
  /** JetStream message id: a second publish with the same id inside the duplicate window is a no-op. */
  msgId?: string;
  headers?: Record<string, string>;
  /**
   * Optimistic concurrency: the publish fails with MV_ERR_CONFLICT unless the stream's last message
   * on this subject has this sequence (0: none yet). Keeps an append-only chain from forking.
   */
  expectLastSubjectSeq?: number;
}

export interface PubAck {
  seq: number;
  duplicate: boolean;
}

/** A running read of a whole stream. */
export interface Tail {
  /** Resolves once every message stored when the tail started has been handled. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/** A running durable pull consumer. */
export interface Work extends AsyncIterable<WorkMessage> {
  stop(): Promise<void>;
}

export interface Bus {
  /**
   * Publishes to JetStream and resolves with the stream's ack. Publishes may be pipelined: the
   * adapter bounds the bytes in flight per connection. Rejects with MV_ERR_TRANSPORT_FAILED.
   */
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PubAck>;
  /** Creates or binds the durable pull consumer `durable` on `stream` and streams its messages. */
  work(stream: string, durable: string, opts?: { maxMessages?: number; ackWaitMs?: number }): Promise<Work>;
  /** Reads `stream` from its first message, calling `handle` for each one in order, then keeps following it. */
  tail(stream: string, handle: (m: StoredMessage) => void): Promise<Tail>;
  /** How many messages on exactly `subject` are in `stream`. */
  countSubject(stream: string, subject: string): Promise<number>;
  /** Every message on exactly `subject` in `stream`, in order, at most `max`. */
  readSubject(stream: string, subject: string, max: number): Promise<StoredMessage[]>;
  /**
   * Every message on exactly `subject` in `stream` as it is now, in order, streamed with a bounded
   * number of bytes in flight; `headersOnly`: payloads stay on the server (header Nats-Msg-Size).
   */
  scanSubject(stream: string, subject: string, opts?: { headersOnly?: boolean }): AsyncIterable<StoredMessage>;
  /** The last message on exactly `subject` in `stream`, or undefined when there is none. */
  lastOnSubject(stream: string, subject: string): Promise<StoredMessage | undefined>;
  /** Removes every message on exactly `subject` from `stream` (`belowSeq`: only those with a lower sequence). */
  purgeSubject(stream: string, subject: string, belowSeq?: number): Promise<void>;
}

/** A key-value bucket with compare-and-set: JetStream KV. */
export interface KvBucket {
  get(key: string): Promise<{ value: Uint8Array; revision: number } | undefined>;
  /** Fails with MV_ERR_CONFLICT if the key exists. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Fails with MV_ERR_CONFLICT unless the key is still at `revision`. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  keys(): Promise<string[]>;
}
