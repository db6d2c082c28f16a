/**
 * The NATS adapter: the only file that imports the NATS client. It connects, creates the four
 * medvault streams (idempotently, nats-server 2.9 features only) and implements `Bus` and `KvBucket`.
 * With `nkeySeedFile` and `caFile` it authenticates with the controller's nkey over TLS only.
 */
import { connect, credsAuthenticator, headers as natsHeaders, nanos, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,

  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { readFileSync } from 'node:fs';
import { MedvaultError, codes, natsTls, streams } from '@medvault/protocol';
import { readControllerSeed } from './sites/registry.js';
import { SITE_AUDIT_STREAM, type Bus, type KvBucket, type PubAck, type PublishOptions, type StoredMessage, type Tail, type Work, type WorkMessage } from './bus.js';

const DAY_MS = 24 * 3600_000;

/** The streams' configurations. Retention and storage never change once created. */
export const streamConfigs: Array<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
  {
    name: streams.inbox.name,
    subjects: [...streams.inbox.subjects],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60_000),
  },
  {
    name: streams.offsite.name,
    subjects: [...streams.offsite.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60_000),
    deny_delete: true,
  },
  {
    name: streams.events.name,
    subjects: [...streams.events.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(400 * DAY_MS),
  },
  {
    name: streams.control.name,
    subjects: [...streams.control.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60_000),
  },
  {
    // The controller's audit chain: the system of record, never deleted or purged through the API.
    name: streams.audit.name,
    subjects: [...streams.audit.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60_000),
    deny_delete: true,
    deny_purge: true,
  },
  {
    // The agents' audit chains, copied by the server from MV_EVENTS (whose events age out after 400
    // days) into a stream that keeps them without limit and refuses deletion and purge.
    name: SITE_AUDIT_STREAM,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    sources: [{ name: streams.events.name, filter_subject: 'mv.v1.ev.*.audit' }],
    deny_delete: true,
    deny_purge: true,
  } as Partial<StreamConfig> & { name: string; subjects: string[] },
];

export interface NatsOptions {
  servers: string[];
  creds?: string;
  /** File holding the controller's nkey seed (`SU…`), see `medvault-controller init`. */
  nkeySeedFile?: string;
  /** The private CA that signed the NATS server's certificate: the connection then requires TLS. */
  caFile?: string;
  name?: string;
  /** Bytes of JetStream publishes in flight per connection; well under the server's 64 MiB max_pending. */
  maxInFlightBytes?: number;
  /** Replicas of every stream and KV bucket (default 1; 3 on a three-node cluster: survives losing a node). */
  replicas?: number;
}

export interface Nats {
  readonly bus: Bus;
  bucket(name: string, opts?: { history?: number }): Promise<KvBucket>;
  ensureStreams(): Promise<void>;
  close(): Promise<void>;
}

function transport(message: string, cause: unknown): MedvaultError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new MedvaultError(codes.TRANSPORT_FAILED, `${message}${detail}`, { cause, retryable: true });
}

/**
 * Connects to NATS; rejects with MV_ERR_TRANSPORT_FAILED naming the servers, or, before any
 * connection, with MV_ERR_KEY_INVALID naming an nkey seed file that cannot be read or is not one.
 */
export async function openNats(o: NatsOptions): Promise<Nats> {
  const seed = o.nkeySeedFile ? readControllerSeed(o.nkeySeedFile) : undefined;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: o.servers,
      name: o.name ?? 'medvault-controller',
      maxReconnectAttempts: -1,
      ...(o.creds ? { authenticator: credsAuthenticator(readFileSync(o.creds)) } : {}),
      ...(seed ? { authenticator: nkeyAuthenticator(seed) } : {}),
      ...(o.caFile ? { tls: natsTls(o.caFile) } : {}),
    });
  } catch (cause) {
    throw transport(`cannot connect to NATS at ${o.servers.join(',')}`, cause);
  }
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  return {
    bus: new NatsBus(js, jsm, new ByteWindow(o.maxInFlightBytes ?? 16 * 1024 * 1024)),
    ensureStreams: () => ensureStreams(jsm, o.replicas ?? 1),
    bucket: (name, opts) => openBucket(nc, name, opts?.history ?? 1, o.replicas ?? 1),
    close: async () => {
      if (nc.isClosed()) return;
      // Drain waits for the server; when it is unreachable, give up after a few seconds.
      const timeout = new Promise<void>((r) => setTimeout(r, 5000).unref());
      await Promise.race([nc.drain().catch(() => undefined), timeout]);
      if (!nc.isClosed()) await nc.close();
    },
  };
}

async function ensureStreams(jsm: JetStreamManager, replicas: number): Promise<void> {
  for (const base of streamConfigs) {
    const cfg = { ...base, num_replicas: replicas };
    try {
      const info = await jsm.streams.info(cfg.name).catch(() => undefined);
      if (info === undefined) await jsm.streams.add(cfg);
      else {
        const { retention: _r, storage: _s, ...mutable } = cfg;
        await jsm.streams.update(cfg.name, { ...info.config, ...mutable });
      }
    } catch (cause) {
      throw transport(`cannot create or update stream ${cfg.name}`, cause);
    }
  }
}

/** Bounds the bytes in flight: acquire before sending, release on the ack. */
class ByteWindow {
  private used = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async acquire(n: number): Promise<void> {
    // A message larger than the window still goes, alone.
    while (this.used > 0 && this.used + n > this.max) await new Promise<void>((r) => this.waiters.push(r));
    this.used += n;
  }
  release(n: number): void {
    this.used -= n;
    this.waiters.splice(0).forEach((w) => w());
  }
}

function stored(m: JsMsg): StoredMessage {
  return {
    subject: m.subject,
    seq: m.seq,
    data: m.data,
    time: Math.floor(m.info.timestampNanos / 1e6),
    header: (name) => (m.headers?.has(name) ? m.headers.get(name) : undefined),
  };
}

class NatsBus implements Bus {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly window: ByteWindow,
  ) {}

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PubAck> {
    const size = data.byteLength + 512;
    await this.window.acquire(size);
    try {
      let h;
      if (opts.headers) {
        h = natsHeaders();
        for (const [k, v] of Object.entries(opts.headers)) h.set(k, v);
      }
      const ack = await this.js.publish(subject, data, {
        ...(opts.msgId !== undefined ? { msgID: opts.msgId } : {}),
        ...(opts.expectLastSubjectSeq !== undefined ? { expect: { lastSubjectSequence: opts.expectLastSubjectSeq } } : {}),
        ...(h ? { headers: h } : {}),
        timeout: 30_000,
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (cause) {
      if (opts.expectLastSubjectSeq !== undefined && /wrong last sequence/i.test(String((cause as Error)?.message))) {
        throw new MedvaultError(codes.CONFLICT, `${subject} moved on meanwhile`, { cause, retryable: true });
      }
      throw transport(`publish to ${subject} failed`, cause);
    } finally {
      this.window.release(size);
    }
  }

  async work(stream: string, durable: string, opts: { maxMessages?: number; ackWaitMs?: number } = {}): Promise<Work> {
    try {
      await this.jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(opts.ackWaitMs ?? 120_000),
        max_ack_pending: 2000,
        max_deliver: -1,
      });
      const consumer = await this.js.consumers.get(stream, durable);
      const messages = await consumer.consume({ max_messages: opts.maxMessages ?? 16 });
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<WorkMessage> {
          for await (const m of messages) {
            yield {
              ...stored(m),
              redelivered: m.redelivered,
              ack: () => m.ack(),
              nak: (delayMs?: number) => m.nak(delayMs),
              term: () => m.term(),
              working: () => m.working(),
            };
          }
        },
        stop: async () => {
          await messages.close();
        },
      };
    } catch (cause) {
      throw transport(`cannot consume ${stream} as ${durable}`, cause);
    }
  }

  async tail(stream: string, handle: (m: StoredMessage) => void): Promise<Tail> {
    try {
      const info = await this.jsm.streams.info(stream);
      const consumer = await this.js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume({ max_messages: 64 });
      let caught!: () => void;
      const caughtUp = new Promise<void>((r) => (caught = r));
      if (info.state.messages === 0) caught();
      const loop = (async () => {
        for await (const m of messages) {
          handle(stored(m));
          if (m.info.pending === 0) caught();
        }
      })();
      return {
        caughtUp,
        stop: async () => {
          await messages.close();
          await loop;
        },
      };
    } catch (cause) {
      throw transport(`cannot read stream ${stream}`, cause);
    }
  }

  async countSubject(stream: string, subject: string): Promise<number> {
    try {
      const info = await this.jsm.streams.info(stream, { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    } catch (cause) {
      throw transport(`cannot count ${subject} in ${stream}`, cause);
    }
  }

  async readSubject(stream: string, subject: string, max: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    if ((await this.countSubject(stream, subject)) === 0) return out;
    try {
      const consumer = await this.js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
      // Few messages per pull: each may be ~1 MiB and the server drops slow consumers.
      const messages = await consumer.consume({ max_messages: 4 });
      for await (const m of messages) {
        out.push(stored(m));
        if (m.info.pending === 0 || out.length >= max) break;
      }
      await messages.close();
      return out;
    } catch (cause) {
      throw transport(`cannot read ${subject} from ${stream}`, cause);
    }
  }

  async *scanSubject(stream: string, subject: string, opts: { headersOnly?: boolean } = {}): AsyncIterable<StoredMessage> {
    if ((await this.countSubject(stream, subject)) === 0) return;
    let messages;
    try {
      const consumer = await this.js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All, ...(opts.headersOnly ? { headers_only: true } : {}) });
      messages = await consumer.consume(opts.headersOnly ? { max_messages: 1024 } : { max_bytes: 8 * 1024 * 1024 });
    } catch (cause) {
      throw transport(`cannot read ${subject} from ${stream}`, cause);
    }
    const it = messages[Symbol.asyncIterator]();
    try {
      for (;;) {
        // A read that stalls (server paused, connection lost) fails instead of hanging.
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise<'stalled'>((r) => (timer = setTimeout(() => r('stalled'), 30_000)));
        const next = await Promise.race([it.next(), stalled]).finally(() => clearTimeout(timer));
        if (next === 'stalled') throw transport(`reading ${subject} from ${stream} stalled for 30 s`, undefined);
        if (next.done) throw transport(`reading ${subject} from ${stream} ended early`, undefined);
        yield stored(next.value);
        if (next.value.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
  }

  async lastOnSubject(stream: string, subject: string): Promise<StoredMessage | undefined> {
    try {
      const m = await this.jsm.streams.getMessage(stream, { last_by_subj: subject });
      if (!m) return undefined;
      return { subject: m.subject, seq: m.seq, data: m.data, time: m.time.getTime(), header: (n) => (m.header?.has(n) ? m.header.get(n) : undefined) };
    } catch (cause) {
      if (/no message found|not found/i.test(String((cause as Error)?.message))) return undefined;
      throw transport(`cannot read the last message on ${subject} in ${stream}`, cause);
    }
  }

  async purgeSubject(stream: string, subject: string, belowSeq?: number): Promise<void> {
    try {
      await this.jsm.streams.purge(stream, belowSeq === undefined ? { filter: subject } : { filter: subject, seq: belowSeq });
    } catch (cause) {
      throw transport(`cannot purge ${subject} from ${stream}`, cause);
    }
  }
}

async function openBucket(nc: NatsConnection, name: string, history: number, replicas: number): Promise<KvBucket> {
  let kv: KV;
  try {
    kv = await new Kvm(nc).create(name, { history, storage: StorageType.File, replicas });
  } catch (cause) {
    throw transport(`cannot open KV bucket ${name}`, cause);
  }
  const wrongRevision = (err: unknown) => /wrong last sequence|key exists/i.test(String((err as Error)?.message));
  return {
    async get(key) {
      const e = await kv.get(key).catch((cause) => {
        throw transport(`cannot read ${name}/${key}`, cause);
      });
      if (!e || e.operation !== 'PUT') return undefined;
      return { value: e.value, revision: e.revision };
    },
    async create(key, value) {
      try {
        return await kv.create(key, value);
      } catch (err) {
        if (wrongRevision(err)) throw new MedvaultError(codes.CONFLICT, `${key} already exists`, { cause: err });
        throw transport(`cannot create ${name}/${key}`, err);
      }
    },
    async update(key, value, revision) {
      try {
        return await kv.update(key, value, revision);
      } catch (err) {
        if (wrongRevision(err)) throw new MedvaultError(codes.CONFLICT, `${key} changed meanwhile`, { cause: err, retryable: true });
        throw transport(`cannot update ${name}/${key}`, err);
      }
    },
    async keys() {
      const out: string[] = [];
      for await (const k of await kv.keys()) out.push(k);
      return out.sort();
    },
  };
}

