/**
 * The agent's only NATS adapter: publish to JetStream with a message id, and follow a stream from a
 * sequence. Everything else in the agent talks to the `Link` interface, so tests can swap it and
 * no other file imports the NATS client.
 */
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { MedvaultError, codes } from '@medvault/protocol';

export interface LinkMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
  header(name: string): string | undefined;
}

export interface Link {
  /** Publishes and resolves once JetStream acked it (a duplicate msgID is acked too). */
  publish(subject: string, payload: Uint8Array, opts: { msgID: string; headers?: Record<string, string> }): Promise<void>;
  /**
   * Calls `onMessage` for every message of `stream` matching `filter`, in stream order, starting at
   * sequence `fromSeq`, awaiting each call; reconnects and resumes after the last handled message
   * until `stop()`. Messages are never skipped; after a reconnect some may be delivered again.
   */
  follow(stream: string, filter: string, fromSeq: number, onMessage: (m: LinkMessage) => Promise<void>): { stop(): Promise<void> };
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface LinkOptions {
  servers: string[];
  name: string;
  /** Milliseconds to wait for a JetStream ack before the publish fails and is retried later. */
  ackTimeoutMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export async function openLink(opts: LinkOptions): Promise<Link> {
  const nc: NatsConnection = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
  });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') connected = true;
      if (s.type === 'disconnect' || s.type === 'reconnect') opts.log?.(`nats ${s.type}`, {});
    }
  })();
  const js: JetStreamClient = jetstream(nc, { timeout: opts.ackTimeoutMs ?? 10_000 });

  return {
    get connected() {
      return connected && !nc.isClosed();
    },
    async publish(subject, payload, { msgID, headers }) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(headers ?? {})) h.set(k, v);
      try {
        await js.publish(subject, payload, { msgID, headers: h });
      } catch (cause) {
        throw new MedvaultError(codes.TRANSPORT_FAILED, `publish to ${subject} failed: ${(cause as Error).message}`, { cause, retryable: true });
      }
    },
    follow(stream, filter, fromSeq, onMessage) {
      let next = fromSeq;
      let stopped = false;
      let current: { stop(): void } | undefined;
      const done = (async () => {
        while (!stopped) {
          try {
            const consumer = await js.consumers.get(stream, {
              filter_subjects: filter, // a single subject: nats-server 2.9 has no multi-filter consumers
              deliver_policy: 'by_start_sequence' as never,
              opt_start_seq: Math.max(1, next),
            });
            const messages = await consumer.consume({ max_messages: 64 });
            current = { stop: () => void messages.stop() };
            if (stopped) messages.stop();
            for await (const m of messages) {
              if (m.seq < next) continue;
              await onMessage({ subject: m.subject, seq: m.seq, data: m.data, header: (n) => m.headers?.get(n) || undefined });
              next = m.seq + 1;
            }
          } catch (err) {
            if (!stopped) opts.log?.('follow failed; retrying', { stream, error: (err as Error).message });
          }
          if (!stopped) await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      return {
        async stop() {
          stopped = true;
          current?.stop();
          await done;
        },
      };
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
